# Golden AMI for every Airflow node (api-server, scheduler, worker, standalone): Amazon
# Linux 2023 + Python 3.11 venv from requirements.lock + systemd units + the bootstrap
# that turns an instance into its role at boot. The infra looks it up as
# "<ami.namePrefix>-*" (config/settings-contract.json) owned by self.

locals {
  # Names and ids the infra and the bootstrap share with the image, from their one source
  # (abspath: Packer cleans a relative "packer//../config" into "packer/config").
  contract      = jsondecode(file("${abspath(path.root)}/../config/settings-contract.json"))
  ami_prefix    = local.contract.ami.namePrefix
  timestamp     = formatdate("YYYYMMDDhhmmss", timestamp())
  instance_type = var.instance_type != "" ? var.instance_type : (var.architecture == "arm64" ? "t4g.medium" : "t3.medium")
  build_dir     = "/tmp/airflow-build"
  tags = {
    Name              = "${local.ami_prefix}-${var.airflow_version}"
    Project           = var.project
    AirflowVersion    = var.airflow_version
    GitRevision       = var.git_revision
    BuildTime         = timestamp()
    SourceAMI         = data.amazon-ami.al2023.id
    SourceAMIName     = data.amazon-ami.al2023.name
    Architecture      = var.architecture
    WorkerStopTimeout = format("%d", var.worker_stop_timeout)
  }
}

# Latest Amazon Linux 2023 (standard, not minimal) for the chosen architecture.
data "amazon-ami" "al2023" {
  region = var.region
  filters = {
    name                = "al2023-ami-2023.*-kernel-*-${var.architecture}"
    architecture        = var.architecture
    virtualization-type = "hvm"
    root-device-type    = "ebs"
  }
  owners      = ["amazon"]
  most_recent = true
}

source "amazon-ebs" "golden" {
  region          = var.region
  source_ami      = data.amazon-ami.al2023.id
  instance_type   = local.instance_type
  subnet_id       = var.subnet_id != "" ? var.subnet_id : null
  ami_name        = "${local.ami_prefix}-${var.airflow_version}-${local.timestamp}"
  ami_description = "Apache Airflow ${var.airflow_version} node (AL2023 ${var.architecture}), git ${var.git_revision}"

  ssh_username         = "ec2-user"
  ssh_interface        = var.ssh_interface
  iam_instance_profile = var.iam_instance_profile != "" ? var.iam_instance_profile : null
  dynamic "temporary_iam_instance_profile_policy_document" {
    # only when no profile is given: the minimum Session Manager needs
    for_each = var.iam_instance_profile == "" && var.ssh_interface == "session_manager" ? [1] : []
    content {
      Version = "2012-10-17"
      Statement {
        Effect   = "Allow"
        Action   = ["ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel", "ec2messages:*"]
        Resource = ["*"]
      }
    }
  }

  # IMDSv2 only, on the builder and (imds_support) on every instance launched from the AMI.
  imds_support = "v2.0"
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.root_volume_size_gb
    volume_type           = "gp3"
    encrypted             = true
    kms_key_id            = var.kms_key_id != "" ? var.kms_key_id : null
    delete_on_termination = true
  }
  encrypt_boot = true
  kms_key_id   = var.kms_key_id != "" ? var.kms_key_id : null

  tags          = local.tags
  snapshot_tags = local.tags
  run_tags      = merge(local.tags, { Name = "packer-${local.ami_prefix}-builder" })
}

build {
  name    = "airflow-golden"
  sources = ["source.amazon-ebs.golden"]

  provisioner "shell" {
    inline = ["mkdir -p ${local.build_dir}"]
  }

  # What is tested is what is baked: the same lock, contract and bootstrap as the rehearsal.
  provisioner "file" {
    sources = [
      "${path.root}/../requirements.lock",
      "${path.root}/../config/settings-contract.json",
      "${path.root}/files/bootstrap",
    ]
    destination = "${local.build_dir}/"
  }

  provisioner "shell" {
    execute_command = "sudo -E bash '{{ .Path }}'"
    environment_vars = [
      "BUILD_DIR=${local.build_dir}",
      "AIRFLOW_VERSION=${var.airflow_version}",
      "WORKER_STOP_TIMEOUT=${var.worker_stop_timeout}",
      "AIRFLOW_UID=${local.contract.airflowUser.uid}",
      "AIRFLOW_GID=${local.contract.airflowUser.gid}",
    ]
    scripts = [
      "${path.root}/scripts/10-os-packages.sh",
      "${path.root}/scripts/20-airflow-user.sh",
      "${path.root}/scripts/30-airflow-venv.sh",
      "${path.root}/scripts/40-units-and-bootstrap.sh",
      "${path.root}/scripts/45-rds-ca-bundle.sh",
      "${path.root}/scripts/80-cleanup.sh",
      "${path.root}/scripts/90-validate.sh",
    ]
  }

  post-processor "manifest" {
    output     = "${path.root}/manifest.json"
    strip_path = true
    custom_data = {
      airflow_version = var.airflow_version
      git_revision    = var.git_revision
      architecture    = var.architecture
    }
  }
}
