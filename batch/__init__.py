"""The event-driven pipeline: S3 -> SQS -> Lambda handler -> Batch job -> `POST /analyze`.

* `batch.events` parses S3 event notifications (the job's full parser).
* `batch.lambda_handler` is the Lambda function (standard library + boto3 only).
* `batch.process_video` is the Batch job entrypoint (`python -m batch.process_video`).
* `batch.local_runner` runs jobs as subprocesses and polls SQS like Lambda does.

See `batch/README.md` for the delivery semantics.
"""
