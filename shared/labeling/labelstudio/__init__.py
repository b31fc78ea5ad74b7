"""The Label Studio backend: labeling configs, track conversion, the REST client, the backend."""
