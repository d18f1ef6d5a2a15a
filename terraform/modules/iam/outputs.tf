output "batch_job_role_arn" {
  description = "Task role of the Batch analysis job."
  value       = aws_iam_role.batch_job.arn
}

output "batch_execution_role_arn" {
  description = "Execution role of the Batch analysis job."
  value       = aws_iam_role.batch_execution.arn
}

output "lambda_role_arn" {
  description = "Role of the SQS-to-Batch Lambda."
  value       = aws_iam_role.lambda.arn
}

output "service_task_role_arn" {
  description = "Task role of the FastAPI service."
  value       = aws_iam_role.service_task.arn
}

output "service_execution_role_arn" {
  description = "Execution role of the FastAPI service."
  value       = aws_iam_role.service_execution.arn
}

output "batch_instance_profile_arn" {
  description = "Instance profile of the GPU compute environment (null when disabled)."
  value       = var.enable_gpu ? aws_iam_instance_profile.batch_instance[0].arn : null
}
