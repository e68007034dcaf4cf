"""Talking to ComfyUI: the servers and endpoints that run workflows, and the graphs they run.

The package is grouped by concern; start with the one you need:

``graphs/`` - the workflow as data, no I/O
    ``workflow.py`` (:class:`~sceneforge.comfy.graphs.workflow.Workflow`: load a bundled or user graph,
    fill prompt, seed, size, image), ``trace.py`` (which node feeds which), ``validate.py`` (a graph
    against a server's ``/object_info``), ``models.py`` (model files a server lacks), ``outputs.py``
    (outputs a RunPod worker cannot return), ``preflight.py`` (those checks before a run).

``protocol/`` - what ComfyUI says and what it means
    ``watch.py`` (a pure job tracker: websocket and ``/history`` facts in, actions out), ``driver.py``
    (carries its actions out), ``result.py`` (a finished job's outputs), ``errors_map.py`` (HTTP
    statuses and node errors as sceneforge errors).

``transport/`` - bytes on the wire, never trusted
    ``http.py`` (bounded JSON reads), ``socket.py`` (one websocket per server), ``download.py`` and
    ``files.py`` (uploads and capped downloads), ``verify.py`` (every image decoded before it is kept).

``pool/`` - where jobs run
    ``pool.py`` (:class:`~sceneforge.comfy.pool.pool.ComfyPool`: leases, failover, outage grace),
    ``servers.py`` (the pool's members built from the settings).

``endpoints/`` - serverless endpoints as pool members (docs/elastic.md)
    ``runpod.py`` (RunPod's queue API with worker-comfyui), ``comfyui_api.py`` (SaladTechnologies'
    comfyui-api), ``member.py`` (what they share: inputs and outputs inline), ``urls.py`` (which member a
    URL names).

``client.py`` - one ComfyUI server as a pool member (:class:`~sceneforge.comfy.client.ComfyClient`).
``journal.py`` - each scene's job written down before it is submitted, so a killed run re-attaches.
``backend.py`` - :class:`~sceneforge.comfy.backend.ComfyBackend`, the base of the ``comfyui`` image
and ``wan`` motion backends.
"""
