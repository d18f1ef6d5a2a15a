output "vpc_id" {
  description = "VPC ID."
  value       = local.vpc_id
}

output "vpc_cidr" {
  description = "VPC CIDR block."
  value       = local.vpc_cidr
}

output "private_subnet_ids" {
  description = "Private subnet IDs."
  value       = local.private_subnet_ids
}

output "public_subnet_ids" {
  description = "Public subnet IDs."
  value       = local.public_subnet_ids
}

output "alb_security_group_id" {
  description = "Security group of the ALB."
  value       = aws_security_group.alb.id
}

output "service_security_group_id" {
  description = "Security group of the ECS service tasks."
  value       = aws_security_group.service.id
}

output "batch_security_group_id" {
  description = "Security group of the Batch jobs."
  value       = aws_security_group.batch.id
}

output "lambda_security_group_id" {
  description = "Security group of the Lambda function."
  value       = aws_security_group.lambda.id
}

output "db_security_group_id" {
  description = "Security group of the RDS instance."
  value       = aws_security_group.db.id
}
