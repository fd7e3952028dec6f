"""The control protocol between the front end and a worker: typed requests, framing, version."""
