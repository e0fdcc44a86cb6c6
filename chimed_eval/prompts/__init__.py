"""Named, versioned prompt variants, the MCQ and judge prompt texts."""
