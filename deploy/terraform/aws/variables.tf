variable "region" { type = string }
variable "vpc_id" { type = string }
variable "public_subnets" { type = list(string) }
variable "private_subnets" { type = list(string) }
variable "certificate_arn" { type = string }
# Where scripts/package's .deb is uploaded.
variable "package_bucket" { type = string }
variable "package_key" { type = string }
# The load balancer's private addresses (X-Forwarded-For is believed from these only).
variable "balancer_addresses" { type = list(string) }
variable "node_instance_type" {
  type    = string
  default = "c7i.large"
}
variable "database_instance_class" {
  type    = string
  default = "db.m7g.large"
}
variable "api_nodes" {
  type    = object({ min = number, max = number })
  default = { min = 2, max = 20 }
}
variable "worker_nodes" {
  type    = object({ min = number, max = number })
  default = { min = 1, max = 4 }
}
