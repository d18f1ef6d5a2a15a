output "queue_url" {
  description = "URL of the main queue."
  value       = aws_sqs_queue.main.id
}

output "queue_arn" {
  description = "ARN of the main queue."
  value       = aws_sqs_queue.main.arn
}

output "queue_name" {
  description = "Name of the main queue."
  value       = aws_sqs_queue.main.name
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dlq.id
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "notification_queue_arn" {
  description = "ARN of the main queue, available only after the policy allowing S3 exists."
  value       = aws_sqs_queue.main.arn
  depends_on  = [aws_sqs_queue_policy.main]
}
