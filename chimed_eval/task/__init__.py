"""The Task interface, TaskData, TaskRunOptions and the multiple-choice task."""
