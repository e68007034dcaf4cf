"""What ComfyUI says and what it means: the pure job tracker, its driver, results, error mapping."""
