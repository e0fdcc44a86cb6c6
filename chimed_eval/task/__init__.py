"""What a task is: the Task interface (base), what a run hands it and what its loader returns
(options: TaskRunOptions, TaskData), and the multiple-choice task every exam instantiates
(multiple_choice: MCQTask, with its cot and chat prompts in mcq_prompt)."""
