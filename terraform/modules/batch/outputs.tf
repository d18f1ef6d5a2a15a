output "job_queue_arn" {
  description = "Job queue the Lambda submits to (GPU queue when enabled)."
  value       = var.enable_gpu ? aws_batch_job_queue.gpu[0].arn : aws_batch_job_queue.fargate.arn
}

output "job_queue_name" {
  description = "Name of that job queue."
  value       = var.enable_gpu ? aws_batch_job_queue.gpu[0].name : aws_batch_job_queue.fargate.name
}

output "job_definition_name" {
  description = "Job definition the Lambda submits (name only: the latest ACTIVE revision is used)."
  value       = var.enable_gpu ? aws_batch_job_definition.gpu[0].name : aws_batch_job_definition.fargate.name
}

output "job_queue_arns" {
  description = "All job queues."
  value       = concat([aws_batch_job_queue.fargate.arn], aws_batch_job_queue.gpu[*].arn)
}

output "log_group_arn" {
  description = "Log group of the jobs."
  value       = aws_cloudwatch_log_group.jobs.arn
}
