output "api_url" {
  description = "Base URL of the API (FASTAPI_ENDPOINT)."
  value       = "${local.scheme}://${local.api_host}:${var.port}"
}

output "alb_dns_name" {
  description = "DNS name of the ALB."
  value       = aws_lb.this.dns_name
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "log_group_arn" {
  description = "Log group of the service."
  value       = aws_cloudwatch_log_group.service.arn
}
