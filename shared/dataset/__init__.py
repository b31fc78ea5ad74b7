"""The dataset of completed clips: its index (DynamoDB), the export formats, and the exports
the control service runs into S3. Shared by post-processing (writes the index), the control
service (queries, exports) and the CLI (`lava dataset`)."""
