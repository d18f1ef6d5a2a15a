output "function_name" {
  description = "Name of the Lambda function."
  value       = aws_lambda_function.submit_job.function_name
}

output "function_arn" {
  description = "ARN of the Lambda function."
  value       = aws_lambda_function.submit_job.arn
}

output "log_group_arn" {
  description = "Log group of the function."
  value       = aws_cloudwatch_log_group.function.arn
}
