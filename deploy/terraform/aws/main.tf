# Liftoff on AWS, as a documented example (docs/operations.md, "Terraform"): not applied by this repository's
# suite (no cloud account here), and not validated (Terraform is not packaged for Debian 12). It lays out what
# deploy/local runs on one machine: API nodes in an autoscaling group behind an Application Load Balancer that checks
# /readyz, job workers, PostgreSQL 15 (Multi-AZ, with a read replica) and Redis. The nodes install the Debian
# package of scripts/package from an S3 bucket and run liftoff@api or liftoff@worker under systemd.
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.0" }
  }
}

provider "aws" { region = var.region }

data "aws_ami" "debian12" {
  most_recent = true
  owners      = ["136693071363"] # Debian
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
}

resource "random_password" "database" {
  length  = 32
  special = false
}

resource "random_bytes" "webhook_key" { length = 32 }

# --- Network: the VPC and subnets are given (var.vpc_id, var.public_subnets, var.private_subnets).
resource "aws_security_group" "balancer" {
  name   = "liftoff-balancer"
  vpc_id = var.vpc_id
  ingress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "nodes" {
  name   = "liftoff-nodes"
  vpc_id = var.vpc_id
  ingress {
    from_port       = 8080
    to_port         = 8080
    protocol        = "tcp"
    security_groups = [aws_security_group.balancer.id]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "data" {
  name   = "liftoff-data"
  vpc_id = var.vpc_id
  ingress {
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.nodes.id]
  }
  ingress {
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [aws_security_group.nodes.id]
  }
}

# --- PostgreSQL 15: a Multi-AZ primary (a synchronous standby that AWS promotes) and a read replica.
resource "aws_db_subnet_group" "liftoff" {
  name       = "liftoff"
  subnet_ids = var.private_subnets
}

resource "aws_db_instance" "primary" {
  identifier                   = "liftoff"
  engine                       = "postgres"
  engine_version               = "15"
  instance_class               = var.database_instance_class
  allocated_storage            = 100
  max_allocated_storage        = 1000
  storage_type                 = "gp3"
  db_name                      = "liftoff"
  username                     = "liftoff"
  password                     = random_password.database.result
  multi_az                     = true
  db_subnet_group_name         = aws_db_subnet_group.liftoff.name
  vpc_security_group_ids       = [aws_security_group.data.id]
  backup_retention_period      = 14 # point-in-time recovery over two weeks
  deletion_protection          = true
  performance_insights_enabled = true
  skip_final_snapshot          = false
  final_snapshot_identifier    = "liftoff-final"
}

resource "aws_db_instance" "replica" {
  identifier             = "liftoff-replica-1"
  replicate_source_db    = aws_db_instance.primary.identifier
  instance_class         = var.database_instance_class
  vpc_security_group_ids = [aws_security_group.data.id]
  skip_final_snapshot    = true
}

# --- Redis: rate-limit windows and the event relay between nodes (nothing to persist).
resource "aws_elasticache_subnet_group" "liftoff" {
  name       = "liftoff"
  subnet_ids = var.private_subnets
}

resource "aws_elasticache_cluster" "redis" {
  cluster_id         = "liftoff"
  engine             = "redis"
  engine_version     = "7.0"
  node_type          = "cache.t4g.small"
  num_cache_nodes    = 1
  subnet_group_name  = aws_elasticache_subnet_group.liftoff.name
  security_group_ids = [aws_security_group.data.id]
}

# --- The settings every node shares, in Secrets Manager; a node reads them at boot into /etc/liftoff/liftoff.env.
resource "aws_secretsmanager_secret" "settings" { name = "liftoff/settings" }

resource "aws_secretsmanager_secret_version" "settings" {
  secret_id = aws_secretsmanager_secret.settings.id
  secret_string = join("\n", [
    "LIFTOFF_DATABASE_URL=postgresql://liftoff:${random_password.database.result}@${aws_db_instance.primary.address}:5432/liftoff",
    "LIFTOFF_DATABASE_REPLICA_URLS=postgresql://liftoff:${random_password.database.result}@${aws_db_instance.replica.address}:5432/liftoff",
    "LIFTOFF_REDIS_URL=redis://${aws_elasticache_cluster.redis.cache_nodes[0].address}:6379",
    "LIFTOFF_WEBHOOK_KEY=${random_bytes.webhook_key.base64}",
    "LIFTOFF_TRUSTED_PROXIES=${join(",", var.balancer_addresses)}",
    "LIFTOFF_AUTO_MIGRATE=false",
  ])
}

resource "aws_iam_role" "node" {
  name = "liftoff-node"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "ec2.amazonaws.com" } }]
  })
}

resource "aws_iam_role_policy" "node" {
  role = aws_iam_role.node.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = ["secretsmanager:GetSecretValue"], Resource = aws_secretsmanager_secret.settings.arn },
      { Effect = "Allow", Action = ["s3:GetObject"], Resource = "arn:aws:s3:::${var.package_bucket}/${var.package_key}" },
    ]
  })
}

resource "aws_iam_instance_profile" "node" { role = aws_iam_role.node.name }

# --- Nodes: one launch template per role; the boot script installs the package and starts liftoff@ROLE.
resource "aws_launch_template" "role" {
  for_each               = toset(["api", "worker"])
  name_prefix            = "liftoff-${each.key}-"
  image_id               = data.aws_ami.debian12.id
  instance_type          = var.node_instance_type
  vpc_security_group_ids = [aws_security_group.nodes.id]
  iam_instance_profile { arn = aws_iam_instance_profile.node.arn }
  user_data = base64encode(<<-BOOT
    #!/bin/sh
    set -e
    apt-get update && apt-get install -y awscli
    aws s3 cp s3://${var.package_bucket}/${var.package_key} /tmp/liftoff.deb
    apt-get install -y /tmp/liftoff.deb
    aws secretsmanager get-secret-value --region ${var.region} --secret-id ${aws_secretsmanager_secret.settings.id} \
      --query SecretString --output text > /etc/liftoff/liftoff.env
    systemctl enable --now liftoff@${each.key}
  BOOT
  )
}

resource "aws_lb" "liftoff" {
  name               = "liftoff"
  load_balancer_type = "application"
  subnets            = var.public_subnets
  security_groups    = [aws_security_group.balancer.id]
  idle_timeout       = 3600 # event streams
}

resource "aws_lb_target_group" "api" {
  name     = "liftoff-api"
  port     = 8080
  protocol = "HTTP"
  vpc_id   = var.vpc_id
  # Longer than drain_delay + shutdown_timeout: a stopping node finishes what it serves.
  deregistration_delay = 30
  health_check {
    path                = "/readyz"
    interval            = 5
    timeout             = 2
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.liftoff.arn
  port              = 443
  protocol          = "HTTPS"
  certificate_arn   = var.certificate_arn
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

resource "aws_autoscaling_group" "role" {
  for_each            = { api = var.api_nodes, worker = var.worker_nodes }
  name                = "liftoff-${each.key}"
  min_size            = each.value.min
  max_size            = each.value.max
  vpc_zone_identifier = var.private_subnets
  target_group_arns   = each.key == "api" ? [aws_lb_target_group.api.arn] : []
  health_check_type   = each.key == "api" ? "ELB" : "EC2"
  launch_template {
    id      = aws_launch_template.role[each.key].id
    version = "$Latest"
  }
  # A new package is a new launch template version: instances are replaced a share at a time.
  instance_refresh {
    strategy = "Rolling"
    preferences { min_healthy_percentage = 90 }
  }
}

# API nodes scale on CPU (65% as in deploy/kubernetes).
resource "aws_autoscaling_policy" "api_cpu" {
  name                   = "liftoff-api-cpu"
  autoscaling_group_name = aws_autoscaling_group.role["api"].name
  policy_type            = "TargetTrackingScaling"
  target_tracking_configuration {
    predefined_metric_specification { predefined_metric_type = "ASGAverageCPUUtilization" }
    target_value = 65
  }
}
