"""What a person reads: the live display, HTML pages, the loss log and plots, TensorBoard, progress, logging, metrics, layer inspection."""
