#!/usr/bin/env node
/**
 * `npm run cost`: the monthly on-demand price of the synthesized cluster stack, resource by
 * resource, beside Amazon MWAA at equal capacity, from the dated table in config/aws-prices.json.
 * Usage: npm run -s cost -- [--out DIR] [--json]   (DIR default cdktf.out, as `npm run synth` writes)
 *
 * Module interface (for `npm run diff`): priceOutDir(outDir) and priceStack(stackJson) return
 * { region, total_usd_month, mwaa_usd_month, mwaa, resources, ... }. Bad input and unknown
 * SKUs throw CostError, whose message is one line per problem.
 */
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const PRICES_FILE = path.join(__dirname, "..", "config", "aws-prices.json");
/** The CloudWatch agent's configuration parameter: the custom metrics it publishes are priced on it. */
const SETTINGS_CONTRACT = require("../config/settings-contract.json");
const AGENT_PARAMETER = SETTINGS_CONTRACT.cloudwatchAgent.parameter;
/** The only statsd names Airflow sends ([metrics] metrics_allow_list). */
const STATSD_NAMES = SETTINGS_CONTRACT.cloudwatchAgent.statsd.metrics.length;
/**
 * Custom metrics per statsd name: the agent's own series (its statsd input tags each with
 * the statsd type) and the dimensionless rollup the alarms read; priced as two, the upper bound.
 */
const SERIES_PER_STATSD_NAME = 2;
/** The scheduler nodes' queue-depth publisher: its metrics for the tracked queue. */
const QUEUE_SIGNAL_METRIC_NAMES = [
  SETTINGS_CONTRACT.workerScaling.metricName,
  SETTINGS_CONTRACT.workerScaling.oldestQueuedMetricName,
];
const USAGE = "usage: npm run -s cost -- [--out DIR] [--json]";

/** Bad input or a price the table lacks: the message is one line per problem. */
class CostError extends Error {
  constructor(lines) {
    super(lines.join("\n"));
    this.name = "CostError";
  }
}

/**
 * Resource types that cost nothing by themselves, each with the reason. Every aws_* type a
 * stack uses must be here or in PRICERS, so a new billable resource cannot slip through as $0.
 */
const FREE_TYPES = {
  aws_launch_template: "launches nothing by itself; its instances are priced on the autoscaling group",
  aws_autoscaling_lifecycle_hook: "no charge",
  aws_db_parameter_group: "configuration object, no charge",
  aws_db_subnet_group: "configuration object, no charge",
  aws_elasticache_parameter_group: "configuration object, no charge",
  aws_elasticache_subnet_group: "configuration object, no charge",
  aws_default_security_group: "security groups and their rules are free",
  aws_security_group: "security groups and their rules are free",
  aws_vpc_security_group_egress_rule: "security groups and their rules are free",
  aws_vpc_security_group_ingress_rule: "security groups and their rules are free",
  aws_efs_access_point: "no charge; the file system is priced",
  aws_efs_file_system_policy: "no charge; the file system is priced",
  aws_efs_mount_target: "no hourly charge; its traffic is priced as Elastic throughput on the file system",
  aws_flow_log: "its records are priced where they land (the destination log group)",
  aws_iam_instance_profile: "IAM is free",
  aws_iam_policy: "IAM is free",
  aws_iam_role: "IAM is free",
  aws_iam_role_policy: "IAM is free",
  aws_iam_role_policy_attachment: "IAM is free",
  aws_internet_gateway: "no hourly charge; data out to the internet is usage, not priced here",
  aws_kms_alias: "aliases are free; the key is priced",
  aws_lb_listener: "included in the load balancer's hourly and LCU price",
  aws_lb_listener_rule: "included in the load balancer's hourly and LCU price",
  aws_lb_target_group: "included in the load balancer's hourly and LCU price",
  aws_route: "VPC routing is free",
  aws_sns_topic: "topics are free; alarm notifications stay within the free tier (1,000 e-mails a month)",
  aws_sns_topic_subscription: "subscriptions are free",
  aws_route_table: "VPC routing is free",
  aws_route_table_association: "VPC routing is free",
  aws_subnet: "VPC networking objects are free",
  aws_vpc: "VPC networking objects are free",
  aws_s3_bucket_lifecycle_configuration: "bucket configuration; storage is priced on the bucket",
  aws_s3_bucket_logging: "bucket configuration; the log objects are priced in the target bucket",
  aws_s3_bucket_ownership_controls: "bucket configuration; storage is priced on the bucket",
  aws_s3_bucket_policy: "bucket configuration; storage is priced on the bucket",
  aws_s3_bucket_public_access_block: "bucket configuration; storage is priced on the bucket",
  aws_s3_bucket_server_side_encryption_configuration:
    "bucket configuration (SSE-S3/SSE-KMS with a bucket key: KMS requests are negligible)",
  aws_s3_bucket_versioning: "bucket configuration; noncurrent versions count in the bucket's assumed storage",
  aws_s3_object: "stored in its bucket, whose assumed storage covers it",
  aws_secretsmanager_secret_version: "included in the secret's monthly price",
  aws_ses_email_identity: "no charge; SES bills per message sent ($0.10 per 1,000), negligible here",
};

/** Providers whose resources exist only in Terraform state. */
const FREE_PROVIDERS = {
  random: "computed by Terraform, no cloud resource",
  null: "no cloud resource",
  time: "no cloud resource",
  tls: "computed by Terraform, no cloud resource",
};

/** Reads and sanity-checks the price table. */
function loadPrices(file = PRICES_FILE) {
  let table;
  try {
    table = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new CostError([`${file}: cannot read the price table (${e.message})`]);
  }
  if (!table.services || !table.assumptions || !table.hours_per_month) {
    throw new CostError([`${file}: expected services, assumptions and hours_per_month`]);
  }
  return table;
}

/** "${aws_x.name.attr}" -> { type: "aws_x", name: "name" }, or undefined for a literal. */
function parseRef(value) {
  const m = typeof value === "string" && /^\$\{([a-z0-9_]+)\.([^.}]+)\.[^}]+\}$/.exec(value);
  return m ? { type: m[1], name: m[2] } : undefined;
}

/** A literal string attribute, or a problem line (a Terraform reference has no price). */
function literal(ctx, address, field, value) {
  if (typeof value === "string" && !value.includes("${")) return value;
  ctx.problems.push(
    `${address}: ${field} is ${JSON.stringify(value)}, not a literal the price table can match`,
  );
  return undefined;
}

/** The per-region price of one SKU, or a problem line naming the resource, SKU and region. */
function price(ctx, address, service, sku, table) {
  const svc = ctx.prices.services[service];
  const region = (table ?? svc?.prices)?.[ctx.region];
  const p = region?.[sku];
  if (typeof p !== "number") {
    ctx.problems.push(
      `${address}: no ${service} price for ${sku} in ${ctx.region} (config/aws-prices.json services.${service})`,
    );
    return 0;
  }
  return p;
}

/** One priced line; usd_month = quantity x unit_usd (x hours when per "hour"). */
function line(ctx, service, fields) {
  const perMonth = fields.per === "hour" ? ctx.hours : 1;
  const usd = fields.quantity * fields.unit_usd * perMonth;
  const out = {
    address: fields.address,
    type: fields.address.split(".")[0],
    path: ctx.path,
    component: fields.component,
    quantity: fields.quantity,
    unit: fields.unit,
    unit_usd: fields.unit_usd,
    per: fields.per,
    usd_month: round(usd),
    detail: fields.detail ?? "",
    service,
    verify: (ctx.prices.services[service]?.verify ?? []).includes(ctx.region),
  };
  if (fields.quantity_max !== undefined) {
    out.quantity_min = fields.quantity_min;
    out.quantity_max = fields.quantity_max;
    out.usd_month_max = round(fields.quantity_max * fields.unit_usd * perMonth);
  }
  return out;
}

const round = (x) => Math.round(x * 100) / 100;
const assumed = (ctx, name) => ctx.prices.assumptions[name].value;

/** EC2, EBS, detailed monitoring and public IPv4 of one fleet of `count` instances. */
function instanceLines(ctx, address, spec, counts) {
  const { min, count, max } = counts;
  const scaled = (per) => ({ quantity: count * per, quantity_min: min * per, quantity_max: max * per });
  const fleet = max !== count || min !== count ? `ASG min ${min}, desired ${count}, max ${max}` : "";
  const lines = [];
  const type = literal(ctx, address, "instance_type", spec.instanceType);
  if (type) {
    lines.push(
      line(ctx, "ec2", {
        address,
        component: `EC2 ${type}`,
        ...scaled(1),
        unit: "instance",
        unit_usd: price(ctx, address, "ec2", type),
        per: "hour",
        detail: fleet,
      }),
    );
  }
  const gbByType = {};
  for (const vol of spec.volumes) {
    if (typeof vol.size !== "number") {
      ctx.problems.push(
        `${address}: EBS volume_size is ${JSON.stringify(vol.size)}; the price needs a literal size`,
      );
      continue;
    }
    const vt = vol.type ?? "gp2";
    gbByType[vt] = (gbByType[vt] ?? 0) + vol.size;
  }
  for (const [vt, gb] of Object.entries(gbByType)) {
    lines.push(
      line(ctx, "ebs", {
        address,
        component: `EBS ${vt}`,
        ...scaled(gb),
        unit: "GB",
        unit_usd: price(ctx, address, "ebs", vt),
        per: "GB-month",
        detail: `${gb} GB per instance`,
      }),
    );
  }
  if (spec.detailedMonitoring) {
    const metrics = assumed(ctx, "detailed_monitoring_metrics_per_instance");
    lines.push(
      line(ctx, "cloudwatch", {
        address,
        component: "detailed monitoring",
        ...scaled(metrics),
        unit: "metric",
        unit_usd: price(ctx, address, "cloudwatch", "metric_month"),
        per: "month",
        detail: `${metrics} per instance, 1-minute resolution`,
      }),
    );
  }
  if (spec.publicIp) {
    lines.push(
      line(ctx, "vpc", {
        address,
        component: "public IPv4",
        ...scaled(1),
        unit: "address",
        unit_usd: price(ctx, address, "vpc", "public_ipv4_hour"),
        per: "hour",
        detail: "one per instance",
      }),
    );
  }
  return lines;
}

/** Instance type, volumes, monitoring and public IP of a launch template or an aws_instance. */
function launchSpec(block, volumesFrom) {
  return {
    instanceType: block.instance_type,
    volumes: volumesFrom.map((v) => ({ size: v.volume_size, type: v.volume_type })),
    detailedMonitoring: block.monitoring?.enabled === true || block.monitoring === true,
    publicIp: (block.network_interfaces ?? []).some((n) => String(n.associate_public_ip_address) === "true"),
  };
}

/** The Terraform type-specific pricers: (ctx, address, block, stack) -> lines. */
const PRICERS = {
  aws_autoscaling_group(ctx, address, b, stack) {
    const spec =
      b.launch_template ?? b.mixed_instances_policy?.launch_template?.launch_template_specification;
    const ref = parseRef(spec?.id ?? spec?.launch_template_id);
    const lt = ref && stack.resource?.aws_launch_template?.[ref.name];
    if (!lt) {
      ctx.problems.push(
        `${address}: launch_template does not reference an aws_launch_template in this stack`,
      );
      return [];
    }
    const min = b.min_size;
    const max = b.max_size;
    const count = b.desired_capacity ?? min;
    if (![min, max, count].every(Number.isInteger)) {
      ctx.problems.push(`${address}: min_size/desired_capacity/max_size must be literal integers`);
      return [];
    }
    const volumes = (lt.block_device_mappings ?? []).map((m) => m.ebs ?? {});
    return instanceLines(ctx, address, launchSpec(lt, volumes), { min, count, max });
  },

  aws_instance(ctx, address, b) {
    const root = b.root_block_device ?? {};
    const volumes = [root, ...(b.ebs_block_device ?? [])];
    const spec = launchSpec(b, volumes);
    spec.publicIp = String(b.associate_public_ip_address) === "true";
    return instanceLines(ctx, address, spec, { min: 1, count: 1, max: 1 });
  },

  aws_db_instance(ctx, address, b) {
    const engine = literal(ctx, address, "engine", b.engine);
    const cls = literal(ctx, address, "instance_class", b.instance_class);
    if (!engine || !cls) return [];
    const table = ctx.prices.services.rds.prices[engine];
    if (!table) {
      ctx.problems.push(
        `${address}: no rds price for engine ${engine} in ${ctx.region} (config/aws-prices.json services.rds)`,
      );
      return [];
    }
    const multiAz = b.multi_az === true || b.multi_az === "true";
    const copies = multiAz ? 2 : 1;
    const storageType = b.storage_type ?? "gp2";
    const az = multiAz ? "Multi-AZ (primary + standby)" : "Single-AZ";
    const lines = [
      line(ctx, "rds", {
        address,
        component: `RDS ${engine} ${cls}`,
        quantity: copies,
        unit: "instance",
        unit_usd: price(ctx, address, "rds", cls, table),
        per: "hour",
        detail: az,
      }),
    ];
    if (typeof b.allocated_storage !== "number") {
      ctx.problems.push(`${address}: allocated_storage must be a literal number of GB`);
      return lines;
    }
    lines.push(
      line(ctx, "rds", {
        address,
        component: `RDS storage ${storageType}`,
        quantity: b.allocated_storage * copies,
        unit: "GB",
        unit_usd: price(ctx, address, "rds", storageType, ctx.prices.services.rds.prices.storage),
        per: "GB-month",
        detail:
          `${b.allocated_storage} GB x ${copies}` +
          (b.max_allocated_storage ? `, autoscales to ${b.max_allocated_storage} GB` : "") +
          "; backups up to the DB size are free",
      }),
    );
    return lines;
  },

  aws_elasticache_replication_group(ctx, address, b) {
    const nodeType = literal(ctx, address, "node_type", b.node_type);
    if (!nodeType) return [];
    const nodes = b.num_cache_clusters ?? (b.num_node_groups ?? 1) * ((b.replicas_per_node_group ?? 0) + 1);
    const engine = b.engine ?? "redis";
    const factor = engine === "valkey" ? ctx.prices.services.elasticache.valkey_factor : 1;
    return [
      line(ctx, "elasticache", {
        address,
        component: `ElastiCache ${engine} ${nodeType}`,
        quantity: nodes,
        unit: "node",
        unit_usd: round4(price(ctx, address, "elasticache", nodeType) * factor),
        per: "hour",
        detail: factor !== 1 ? `Valkey: ${factor} x the Redis OSS node price` : "",
      }),
    ];
  },

  aws_nat_gateway(ctx, address) {
    const gb = assumed(ctx, "nat_gb_per_month");
    return [
      line(ctx, "vpc", {
        address,
        component: "NAT gateway",
        quantity: 1,
        unit: "gateway",
        unit_usd: price(ctx, address, "vpc", "nat_gateway_hour"),
        per: "hour",
      }),
      line(ctx, "vpc", {
        address,
        component: "NAT data processed",
        quantity: gb,
        unit: "GB",
        unit_usd: price(ctx, address, "vpc", "nat_gateway_gb"),
        per: "GB",
        detail: `assumed ${gb} GB/month`,
      }),
    ];
  },

  aws_eip(ctx, address) {
    return [
      line(ctx, "vpc", {
        address,
        component: "public IPv4",
        quantity: 1,
        unit: "address",
        unit_usd: price(ctx, address, "vpc", "public_ipv4_hour"),
        per: "hour",
        detail: "Elastic IP (charged in use or idle)",
      }),
    ];
  },

  aws_lb(ctx, address, b) {
    const kind = b.load_balancer_type ?? "application";
    if (kind !== "application") {
      ctx.problems.push(
        `${address}: no elb price for a ${kind} load balancer in ${ctx.region} (config/aws-prices.json services.elb)`,
      );
      return [];
    }
    const lcu = assumed(ctx, "alb_lcu_per_hour");
    const lines = [
      line(ctx, "elb", {
        address,
        component: "ALB",
        quantity: 1,
        unit: "load balancer",
        unit_usd: price(ctx, address, "elb", "alb_hour"),
        per: "hour",
        detail: b.internal ? "internal" : "internet-facing",
      }),
      line(ctx, "elb", {
        address,
        component: "ALB LCU",
        quantity: lcu,
        unit: "LCU",
        unit_usd: price(ctx, address, "elb", "alb_lcu_hour"),
        per: "hour",
        detail: `assumed baseline ${lcu} LCU`,
      }),
    ];
    if (!b.internal) {
      const azs = (b.subnets ?? b.subnet_mapping ?? []).length;
      lines.push(
        line(ctx, "vpc", {
          address,
          component: "public IPv4",
          quantity: azs,
          unit: "address",
          unit_usd: price(ctx, address, "vpc", "public_ipv4_hour"),
          per: "hour",
          detail: `one per AZ node (${azs} subnets), the minimum`,
        }),
      );
    }
    return lines;
  },

  aws_vpc_endpoint(ctx, address, b) {
    const kind = b.vpc_endpoint_type ?? "Gateway";
    if (kind === "Gateway") {
      return [
        line(ctx, "vpc", {
          address,
          component: "gateway endpoint",
          quantity: 1,
          unit: "endpoint",
          unit_usd: 0,
          per: "month",
          detail: "Gateway endpoint: no charge",
        }),
      ];
    }
    const azs = (b.subnet_ids ?? []).length;
    return [
      line(ctx, "vpc", {
        address,
        component: `${kind} endpoint`,
        quantity: azs,
        unit: "endpoint-AZ",
        unit_usd: price(ctx, address, "vpc", "interface_endpoint_hour"),
        per: "hour",
        detail: `${azs} AZs; data processed ($/GB) not included`,
      }),
    ];
  },

  aws_efs_file_system(ctx, address, b) {
    const oneZone = b.availability_zone_name !== undefined;
    const gb = assumed(ctx, "efs_storage_gb");
    const lines = [
      line(ctx, "efs", {
        address,
        component: oneZone ? "EFS One Zone" : "EFS Standard",
        quantity: gb,
        unit: "GB",
        unit_usd: price(ctx, address, "efs", oneZone ? "one_zone_gb" : "standard_gb"),
        per: "GB-month",
        detail: `assumed ${gb} GB stored`,
      }),
    ];
    const mode = b.throughput_mode ?? "bursting";
    if (mode === "elastic") {
      for (const [dir, key] of [
        ["read", "efs_read_gb_per_month"],
        ["write", "efs_write_gb_per_month"],
      ]) {
        const q = assumed(ctx, key);
        lines.push(
          line(ctx, "efs", {
            address,
            component: `EFS Elastic ${dir}s`,
            quantity: q,
            unit: "GB",
            unit_usd: price(ctx, address, "efs", `elastic_${dir}_gb`),
            per: "GB",
            detail: `assumed ${q} GB/month`,
          }),
        );
      }
    } else if (mode !== "bursting") {
      ctx.problems.push(
        `${address}: no efs price for throughput_mode ${mode} in ${ctx.region} (config/aws-prices.json services.efs)`,
      );
    }
    return lines;
  },

  aws_efs_backup_policy(ctx, address, b) {
    const on = b.backup_policy?.status === "ENABLED";
    const gb = assumed(ctx, "efs_storage_gb");
    return [
      line(ctx, "efs", {
        address,
        component: "AWS Backup of EFS",
        quantity: on ? gb : 0,
        unit: "GB",
        unit_usd: price(ctx, address, "efs", "backup_gb"),
        per: "GB-month",
        detail: on ? `warm backup storage of the assumed ${gb} GB` : "backups disabled",
      }),
    ];
  },

  aws_secretsmanager_secret(ctx, address) {
    return [
      line(ctx, "secretsmanager", {
        address,
        component: "secret",
        quantity: 1,
        unit: "secret",
        unit_usd: price(ctx, address, "secretsmanager", "secret_month"),
        per: "month",
      }),
    ];
  },

  aws_kms_key(ctx, address, b) {
    return [
      line(ctx, "kms", {
        address,
        component: "KMS key",
        quantity: 1,
        unit: "key",
        unit_usd: price(ctx, address, "kms", "key_month"),
        per: "month",
        detail: b.enable_key_rotation ? "yearly rotation adds $1/month per year for two years" : "",
      }),
    ];
  },

  aws_cloudwatch_log_group(ctx, address, b, stack, name) {
    if (b.log_group_class && b.log_group_class !== "STANDARD") {
      ctx.problems.push(
        `${address}: no cloudwatch price for log_group_class ${b.log_group_class} in ${ctx.region}`,
      );
      return [];
    }
    const flow = ctx.flowLogGroups.has(name);
    const ingest = assumed(ctx, flow ? "flow_log_gb_per_month" : "log_group_gb_per_month");
    const months = b.retention_in_days
      ? b.retention_in_days / (365 / 12)
      : assumed(ctx, "log_retention_months_if_forever");
    return [
      line(ctx, "cloudwatch", {
        address,
        component: flow ? "flow log ingestion" : "log ingestion",
        quantity: ingest,
        unit: "GB",
        unit_usd: price(ctx, address, "cloudwatch", "logs_ingest_gb"),
        per: "GB",
        detail: `assumed ${ingest} GB/month`,
      }),
      line(ctx, "cloudwatch", {
        address,
        component: "log storage",
        quantity: round4(ingest * months),
        unit: "GB",
        unit_usd: price(ctx, address, "cloudwatch", "logs_store_gb"),
        per: "GB-month",
        detail: `steady state at ${b.retention_in_days ?? "no"} days retention`,
      }),
    ];
  },

  aws_cloudwatch_metric_alarm(ctx, address) {
    return [
      line(ctx, "cloudwatch", {
        address,
        component: "alarm",
        quantity: 1,
        unit: "alarm",
        unit_usd: price(ctx, address, "cloudwatch", "alarm_month"),
        per: "month",
      }),
    ];
  },

  aws_autoscaling_policy(ctx, address, b) {
    const tracking = b.policy_type === "TargetTrackingScaling";
    const alarms = tracking ? assumed(ctx, "target_tracking_alarms_per_policy") : 0;
    const lines = [
      line(ctx, "cloudwatch", {
        address,
        component: "scaling alarms",
        quantity: alarms,
        unit: "alarm",
        unit_usd: price(ctx, address, "cloudwatch", "alarm_month"),
        per: "month",
        detail: tracking ? "the alarms target tracking creates" : "uses alarms priced on their own",
      }),
    ];
    if (tracking && [].concat(b.target_tracking_configuration ?? [])[0]?.customized_metric_specification) {
      lines.push(
        line(ctx, "cloudwatch", {
          address,
          component: "queue-depth signal",
          quantity: QUEUE_SIGNAL_METRIC_NAMES.length,
          unit: "metric",
          unit_usd: price(ctx, address, "cloudwatch", "metric_month"),
          per: "month",
          detail: `${QUEUE_SIGNAL_METRIC_NAMES.join(" and ")} of the queue, from the scheduler nodes`,
        }),
      );
    }
    return lines;
  },

  aws_s3_bucket(ctx, address) {
    const gb = assumed(ctx, "s3_gb_per_bucket");
    return [
      line(ctx, "s3", {
        address,
        component: "S3 Standard",
        quantity: gb,
        unit: "GB",
        unit_usd: price(ctx, address, "s3", "standard_gb"),
        per: "GB-month",
        detail: `assumed ${gb} GB`,
      }),
    ];
  },

  aws_ssm_parameter(ctx, address, b) {
    const advanced = b.tier === "Advanced";
    const lines = [
      line(ctx, "ssm", {
        address,
        component: advanced ? "Advanced parameter" : "Standard parameter",
        quantity: 1,
        unit: "parameter",
        unit_usd: advanced ? price(ctx, address, "ssm", "advanced_parameter_month") : 0,
        per: "month",
        detail: advanced ? "" : "Standard tier: no charge",
      }),
    ];
    if (typeof b.name === "string" && b.name.endsWith(`/${AGENT_PARAMETER}`)) {
      const metrics = STATSD_NAMES * SERIES_PER_STATSD_NAME;
      lines.push(
        line(ctx, "cloudwatch", {
          address,
          component: "Airflow metrics (CloudWatch agent)",
          quantity: metrics,
          unit: "metric",
          unit_usd: price(ctx, address, "cloudwatch", "metric_month"),
          per: "month",
          detail: `${STATSD_NAMES} statsd names (settings contract metrics_allow_list) x ${SERIES_PER_STATSD_NAME}: per statsd type and the rollup`,
        }),
      );
    }
    return lines;
  },
};

const round4 = (x) => Math.round(x * 10000) / 10000;

/** The one aws provider's region (the un-aliased one when there are several). */
function stackRegion(stack) {
  const providers = [stack.provider?.aws ?? []].flat();
  const main = providers.find((p) => !p.alias) ?? providers[0];
  const region = main?.region;
  if (typeof region !== "string" || region.includes("${")) {
    throw new CostError([
      `provider.aws.region: got ${JSON.stringify(region)}; allowed: a literal AWS region`,
    ]);
  }
  return region;
}

/** The log groups VPC flow logs write into (their ingestion is assumed larger). */
function flowLogGroups(stack) {
  const names = new Set();
  for (const fl of Object.values(stack.resource?.aws_flow_log ?? {})) {
    const ref = parseRef(fl.log_destination);
    if (ref?.type === "aws_cloudwatch_log_group") names.add(ref.name);
  }
  return names;
}

/** A setting the stack publishes in SSM (`<prefix>/<key>`), or undefined. */
function setting(stack, key) {
  for (const p of Object.values(stack.resource?.aws_ssm_parameter ?? {})) {
    if (typeof p.name === "string" && p.name.endsWith(`/${key}`)) return p.insecure_value ?? p.value;
  }
  return undefined;
}

/** Airflow role (tag airflow:role) -> { count, instanceType } of each autoscaling group. */
function fleets(stack) {
  const out = {};
  for (const g of Object.values(stack.resource?.aws_autoscaling_group ?? {})) {
    const role = (g.tag ?? []).find((t) => t.key === "airflow:role")?.value;
    const ref = parseRef(g.launch_template?.id);
    const lt = ref && stack.resource?.aws_launch_template?.[ref.name];
    if (role && lt) out[role] = { count: g.desired_capacity ?? g.min_size, instanceType: lt.instance_type };
  }
  return out;
}

/**
 * MWAA at equal capacity: the cheapest environment class whose scheduler has at least our
 * scheduler node's vCPUs, with enough workers (at the class's default concurrency) for our
 * task slots, and our scheduler and UI counts beyond what the class includes.
 */
function mwaaEquivalent(ctx, stack) {
  const svc = ctx.prices.services.mwaa;
  const rates = svc.prices[ctx.region];
  const executor = setting(stack, "executor");
  const nodes = fleets(stack);
  if (!rates) {
    ctx.problems.push(`mwaa: no mwaa prices in ${ctx.region} (config/aws-prices.json services.mwaa)`);
    return null;
  }
  let ours;
  if (executor === "CeleryExecutor" && nodes.scheduler && nodes.worker) {
    const concurrency = Number(setting(stack, "celery/worker-concurrency"));
    ours = {
      executor,
      task_slots: nodes.worker.count * concurrency,
      slots_from: `${nodes.worker.count} worker x worker_concurrency ${concurrency}`,
      schedulers: nodes.scheduler.count,
      ui: nodes["api-server"]?.count ?? 0,
      scheduler_type: nodes.scheduler.instanceType,
    };
  } else if (executor === "LocalExecutor" && nodes.standalone) {
    const parallelism = Number(setting(stack, "core/parallelism"));
    ours = {
      executor,
      task_slots: parallelism,
      slots_from: `LocalExecutor parallelism ${parallelism} on ${nodes.standalone.count} standalone node`,
      schedulers: nodes.standalone.count,
      ui: nodes.standalone.count,
      scheduler_type: nodes.standalone.instanceType,
    };
  } else {
    return null;
  }
  if (!Number.isFinite(ours.task_slots) || ours.task_slots < 1) {
    ctx.problems.push(`mwaa: the stack's task slots (${ours.slots_from}) are not a positive number`);
    return null;
  }
  const vcpu = ctx.prices.services.ec2.specs[ours.scheduler_type]?.vcpu;
  if (!vcpu) {
    ctx.problems.push(
      `mwaa: no vCPU figure for scheduler type ${ours.scheduler_type} (config/aws-prices.json services.ec2.specs)`,
    );
    return null;
  }
  const inc = svc.included;
  const metadataGb = assumed(ctx, "mwaa_metadata_gb");
  let best = null;
  for (const [cls, spec] of Object.entries(svc.classes)) {
    if (spec.scheduler_vcpu < vcpu) continue;
    const workers = Math.max(inc.workers, Math.ceil(ours.task_slots / spec.worker_concurrency));
    const schedulers = Math.max(inc.schedulers, ours.schedulers);
    const webservers = Math.max(inc.webservers, ours.ui);
    if (workers > inc.max_workers || schedulers > inc.max_schedulers) continue;
    const extra = {
      workers: workers - inc.workers,
      schedulers: schedulers - inc.schedulers,
      webservers: webservers - inc.webservers,
    };
    const hourly =
      rates.environment_hour[cls] +
      extra.workers * rates.additional_worker_hour[cls] +
      extra.schedulers * rates.additional_scheduler_hour[cls] +
      extra.webservers * rates.additional_webserver_hour[cls];
    const usd = hourly * ctx.hours + metadataGb * rates.metadata_gb_month;
    if (!best || usd < best.usd_month) {
      best = {
        environment_class: cls,
        workers,
        schedulers,
        webservers,
        extra_workers: extra.workers,
        extra_schedulers: extra.schedulers,
        extra_webservers: extra.webservers,
        worker_concurrency: spec.worker_concurrency,
        usd_hour: round4(hourly),
        metadata_gb: metadataGb,
        usd_month: round(usd),
      };
    }
  }
  if (!best) {
    ctx.problems.push(
      `mwaa: no environment class fits ${ours.task_slots} task slots and ${ours.schedulers} schedulers`,
    );
    return null;
  }
  const classes = Object.entries(svc.classes)
    .map(([c, s]) => `${c} ${s.scheduler_vcpu} vCPU/${s.worker_concurrency} tasks per worker`)
    .join(", ");
  return {
    ...best,
    ours,
    verify: (svc.verify ?? []).includes(ctx.region),
    mapping:
      `class: the cheapest whose scheduler has >= our scheduler's ${vcpu} vCPUs (${ours.scheduler_type}) ` +
      `and whose workers reach our ${ours.task_slots} task slots (${ours.slots_from}) at default concurrency ` +
      `[${classes}]; ${inc.schedulers} schedulers, ${inc.webservers} web servers and ${inc.workers} worker included, ` +
      `ours: ${ours.schedulers} schedulers, ${ours.ui} UI nodes; metadata DB ${metadataGb} GB`,
  };
}

/** The pipeline's EMR run, from the RunJobFlow params of the DAG the stack deploys. */
function emrPerRun(ctx, stack, stackDir) {
  if (!stackDir) return null;
  for (const [name, obj] of Object.entries(stack.resource?.aws_s3_object ?? {})) {
    if (typeof obj.source !== "string" || !String(obj.key).startsWith("dags/")) continue;
    const file = path.join(stackDir, obj.source);
    if (!fs.existsSync(file)) continue;
    const text = fs.readFileSync(file, "utf8");
    if (!text.includes("EmrCreateJobFlowOperator")) continue;
    const param = (key, re) => re.exec(text.slice(text.indexOf(`"${key}": Param(`)))?.[1];
    const primary = param("primary_instance_type", /Param\(\s*"([^"]+)"/);
    const core = param("core_instance_type", /Param\(\s*"([^"]+)"/);
    const coreCount = Number(param("core_instance_count", /Param\(\s*(\d+)/));
    const address = `aws_s3_object.${name}`;
    if (!primary || !core || !Number.isInteger(coreCount)) {
      ctx.problems.push(
        `${address}: ${obj.key} has no literal primary/core instance type and core count Params`,
      );
      return null;
    }
    const hours = assumed(ctx, "emr_run_hours");
    const nodes = [
      [primary, 1],
      [core, coreCount],
    ];
    let ec2 = 0;
    let emr = 0;
    for (const [t, n] of nodes) {
      ec2 += n * hours * price(ctx, address, "ec2", t);
      emr += n * hours * price(ctx, address, "emr", t);
    }
    return {
      dag_file: obj.key,
      primary_instance_type: primary,
      core_instance_type: core,
      core_instance_count: coreCount,
      hours,
      ec2_usd: round(ec2),
      emr_usd: round(emr),
      usd_per_run: round(ec2 + emr),
    };
  }
  return null;
}

/**
 * Prices one synthesized stack (the parsed cdk.tf.json).
 * @param stackJson the stack's Terraform JSON
 * @param options { stackDir: directory of cdk.tf.json, for the DAG asset; prices: a price table }
 * @throws CostError listing every unknown SKU, unpriced type or non-literal attribute
 */
function priceStack(stackJson, options = {}) {
  const prices = options.prices ?? loadPrices();
  const region = stackRegion(stackJson);
  const ctx = {
    prices,
    region,
    hours: prices.hours_per_month,
    problems: [],
    flowLogGroups: flowLogGroups(stackJson),
    path: "",
  };
  if (!Object.values(prices.services).some((s) => s.prices?.[region])) {
    const known = Object.keys(prices.services.ec2.prices).join(", ");
    throw new CostError([
      `provider.aws.region: got "${region}"; priced regions: ${known} (config/aws-prices.json)`,
    ]);
  }
  const resources = [];
  for (const [type, byName] of Object.entries(stackJson.resource ?? {})) {
    const provider = type.split("_")[0];
    for (const [name, block] of Object.entries(byName)) {
      const address = `${type}.${name}`;
      if (FREE_PROVIDERS[provider] || FREE_TYPES[type]) continue;
      const pricer = PRICERS[type];
      if (!pricer) {
        ctx.problems.push(
          `${address}: resource type ${type} is neither priced nor listed free in scripts/cost.js`,
        );
        continue;
      }
      if (block.count !== undefined || block.for_each !== undefined) {
        ctx.problems.push(`${address}: count/for_each is not supported by the pricer`);
        continue;
      }
      const meta = block["//"]?.metadata?.path ?? name;
      ctx.path = meta.includes("/") ? meta.slice(meta.indexOf("/") + 1) : meta;
      resources.push(...pricer(ctx, address, block, stackJson, name));
    }
  }
  const mwaa = mwaaEquivalent(ctx, stackJson);
  const emr = emrPerRun(ctx, stackJson, options.stackDir);
  if (ctx.problems.length) throw new CostError(ctx.problems);
  const sum = (f) => round(resources.reduce((n, r) => n + f(r), 0));
  return {
    region,
    hours_per_month: ctx.hours,
    prices_as_of: prices.as_of,
    total_usd_month: sum((r) => r.usd_month),
    total_usd_month_max: sum((r) => r.usd_month_max ?? r.usd_month),
    mwaa_usd_month: mwaa ? mwaa.usd_month : null,
    mwaa,
    emr_per_run: emr,
    assumptions: Object.fromEntries(Object.entries(prices.assumptions).map(([k, v]) => [k, v.value])),
    resources,
  };
}

/**
 * Prices the cluster stack (the one with autoscaling groups) under outDir/stacks/.
 * @throws CostError when outDir or its cluster stack is missing or unreadable
 */
function priceOutDir(outDir, options = {}) {
  const stacksDir = path.join(outDir, "stacks");
  if (!fs.existsSync(outDir)) {
    throw new CostError([`--out ${outDir}: no such directory; run npm run synth first or pass --out DIR`]);
  }
  const names = fs.existsSync(stacksDir) ? fs.readdirSync(stacksDir).sort() : [];
  const stacks = [];
  for (const name of names) {
    const file = path.join(stacksDir, name, "cdk.tf.json");
    if (!fs.existsSync(file)) continue;
    let json;
    try {
      json = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch (e) {
      throw new CostError([`${file}: not valid JSON (${e.message})`]);
    }
    if (json.resource?.aws_autoscaling_group) stacks.push({ name, json, dir: path.dirname(file) });
  }
  if (stacks.length !== 1) {
    const why = stacks.length
      ? `several: ${stacks.map((s) => s.name).join(", ")}`
      : `found: ${names.join(", ") || "none"}`;
    throw new CostError([
      `--out ${outDir}: expected one cluster stack (with autoscaling groups) under stacks/, ${why}`,
    ]);
  }
  const [stack] = stacks;
  return { stack: stack.name, ...priceStack(stack.json, { ...options, stackDir: stack.dir }) };
}

const usd = (x) => `$${x.toFixed(2)}`;

/** "2 address" -> "2 addresses"; GB and LCU stay as they are. */
function plural(unit, q) {
  if (q === 1 || unit === "GB" || unit === "LCU") return unit;
  return unit.endsWith("s") ? `${unit}es` : `${unit}s`;
}

/** The human-readable report of a priceOutDir result. */
function formatReport(r) {
  const out = [];
  const charged = r.resources.filter((l) => l.usd_month !== 0).sort((x, y) => x.path.localeCompare(y.path));
  const pw = Math.max(8, ...charged.map((l) => l.path.length));
  const cw = Math.max(9, ...charged.map((l) => l.component.length));
  out.push(
    `Monthly on-demand price of ${r.stack ?? "the stack"} in ${r.region} (${r.hours_per_month} h/month, prices of ${r.prices_as_of}, config/aws-prices.json)`,
    "",
    `${"$/month".padStart(9)}  ${"resource".padEnd(pw)}  ${"component".padEnd(cw)}  quantity x price; detail`,
  );
  const free = {};
  for (const l of r.resources.filter((x) => x.usd_month === 0)) {
    const key = `${l.type} (${l.detail || l.component})`;
    free[key] = (free[key] ?? 0) + 1;
  }
  for (const l of charged) {
    const unit = `${l.quantity} ${plural(l.unit, l.quantity)} x $${l.unit_usd}/${l.per}`;
    const max =
      l.usd_month_max !== undefined && l.usd_month_max !== l.usd_month
        ? `; at max ${usd(l.usd_month_max)}`
        : "";
    out.push(
      `${usd(l.usd_month).padStart(9)}${l.verify ? "*" : " "} ${l.path.padEnd(pw)}  ${l.component.padEnd(cw)}  ${unit}${l.detail ? `; ${l.detail}` : ""}${max}`,
    );
  }
  out.push(`${"-".repeat(9)}`);
  out.push(
    `${usd(r.total_usd_month).padStart(9)}  total (every autoscaling group at max: ${usd(r.total_usd_month_max)})`,
  );
  const freeList = Object.entries(free).map(([k, n]) => `${n} ${k}`);
  if (freeList.length) out.push(`no charge: ${freeList.join(", ")}`);
  out.push("");
  if (r.mwaa) {
    const m = r.mwaa;
    const extras = [
      m.extra_workers && `${m.extra_workers} extra worker${m.extra_workers > 1 ? "s" : ""}`,
      m.extra_schedulers && `${m.extra_schedulers} extra scheduler${m.extra_schedulers > 1 ? "s" : ""}`,
      m.extra_webservers && `${m.extra_webservers} extra web server${m.extra_webservers > 1 ? "s" : ""}`,
    ].filter(Boolean);
    out.push(
      `${usd(r.total_usd_month).padStart(9)}  this cluster`,
      `${usd(m.usd_month).padStart(9)}${m.verify ? "*" : " "} MWAA at equal capacity: ${m.environment_class}${extras.length ? ` + ${extras.join(" + ")}` : ""} ` +
        `(${m.workers} x ${m.worker_concurrency} task slots, $${m.usd_hour}/h + ${m.metadata_gb} GB metadata)`,
      `           this cluster is ${Math.round((100 * r.total_usd_month) / m.usd_month)}% of MWAA; MWAA's figure excludes the VPC, NAT and S3 it also needs`,
      `           mapping: ${m.mapping}`,
    );
  }
  if (r.emr_per_run) {
    const e = r.emr_per_run;
    out.push(
      `EMR pipeline run (${e.dag_file} Params): 1 x ${e.primary_instance_type} + ${e.core_instance_count} x ${e.core_instance_type} for an assumed ${e.hours} h: ` +
        `${usd(e.usd_per_run)} per run (EC2 ${usd(e.ec2_usd)} + EMR ${usd(e.emr_usd)}), not in the monthly total`,
    );
  }
  out.push(
    `assumptions: ${Object.entries(r.assumptions)
      .map(([k, v]) => `${k}=${v}`)
      .join(", ")}`,
  );
  if (r.resources.some((l) => l.verify) || r.mwaa?.verify) {
    out.push(
      "* price transcribed with less certainty for this region (see `verify` in config/aws-prices.json)",
    );
  }
  return `${out.join("\n")}\n`;
}

/** CLI: parse flags, price, print; bad input prints its lines and exits 1. */
function main(argv) {
  let outDir = "cdktf.out";
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--json") json = true;
    else if (arg === "--out" && argv[i + 1] !== undefined && !argv[i + 1].startsWith("--"))
      outDir = argv[++i];
    else if (arg === "--out") throw new CostError([`--out: needs a directory; ${USAGE}`]);
    else if (arg === "-h" || arg === "--help") {
      process.stdout.write(`${USAGE}\n`);
      return;
    } else throw new CostError([`unknown argument ${JSON.stringify(arg)}; ${USAGE}`]);
  }
  const result = priceOutDir(outDir);
  process.stdout.write(json ? `${JSON.stringify(result)}\n` : formatReport(result));
}

module.exports = { priceOutDir, priceStack, loadPrices, formatReport, CostError, FREE_TYPES, PRICERS };

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof CostError)) throw e;
    process.stderr.write(`${e.message.replace(/^/gm, "cost: ")}\n`);
    process.exit(1);
  }
}
