"""Uploads into the drop bucket from a browser: a desk that issues tickets (where and how to send
the bytes) and completes them. The S3 desk hands out presigned POSTs, or presigned part URLs for
large files (multipart), so bytes never pass through the API; the server desk of the embedded
profile takes them itself (``medialens serve``'s ``PUT /upload/<name>``). ``desk.upload_desk``
picks the profile's."""
