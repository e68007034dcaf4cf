"""Where jobs run: the pool of ComfyUI servers (and endpoints) the image and motion stages share."""
