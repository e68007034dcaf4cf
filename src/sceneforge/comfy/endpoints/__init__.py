"""Serverless endpoints as pool members: RunPod (worker-comfyui) and comfyui-api; jobs travel whole, outputs come back inline."""
