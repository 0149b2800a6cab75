/**
 * Alarms: CloudWatch alarms on the data stores, load balancers, node groups, Airflow's
 * own metrics and EMR, all notifying one SNS topic encrypted with the cluster key.
 * `notificationEmail` subscribes an address to it (AWS mails a confirmation link first).
 * Every alarm also notifies on its way back to OK, so a page is always closed.
 *
 * Airflow's metrics come from its statsd client (`[metrics] statsd_on`) through the
 * CloudWatch agent on each node. The alarms read them from {@link airflowMetricsNamespace}
 * under the name `<statsd_prefix>.<metric>` without dimensions, so the agent must publish a
 * dimensionless rollup (`aggregation_dimensions: [[]]`): a cluster-wide series that
 * survives node replacement. {@link AIRFLOW_METRIC_ALARMS} is the one table of the Airflow
 * metric names alarmed on, to be matched against what a running Airflow emits.
 */
import { Construct } from "constructs";
import {
  CloudwatchMetricAlarm,
  CloudwatchMetricAlarmMetricQuery,
} from "@cdktf/provider-aws/lib/cloudwatch-metric-alarm";
import { SnsTopic } from "@cdktf/provider-aws/lib/sns-topic";
import { SnsTopicSubscription } from "@cdktf/provider-aws/lib/sns-topic-subscription";
import {
  AIRFLOW_STATSD_PREFIX,
  HasName,
  PropError,
  WORKER_SCALING,
  airflowMetricsNamespace,
  alarmName,
  assertIntIn,
  groupInServiceAlarmId,
  unhealthyTargetsAlarmId,
} from "./contract";

/** One alarm on an Airflow statsd metric. */
export interface AirflowMetricAlarm {
  /** Alarm id: `<resourcePrefix>-airflow-<id>` is the alarm name. */
  readonly id: string;
  /** The metric's name in Airflow 3 (its metrics registry), without the statsd prefix. */
  readonly metric: string;
  /** The statsd type Airflow emits it as. */
  readonly type: "counter" | "gauge" | "timer";
  /** CloudWatch statistic over each period. */
  readonly statistic: "Sum" | "Maximum" | "Average";
  /** Comparison against the threshold. */
  readonly comparison: "LessThanThreshold" | "GreaterThanThreshold";
  /** Threshold in the metric's unit (timers: milliseconds). */
  readonly threshold: number;
  /** Consecutive 60 s periods that must breach. */
  readonly minutes: number;
  /** What a period without data means. */
  readonly treatMissingData: "breaching" | "notBreaching";
  /** What the alarm says, and why the threshold is what it is. */
  readonly description: string;
}

/**
 * The Airflow metrics alarmed on. Names are those of Airflow 3.3's metrics registry
 * (`airflow/_shared/observability/metrics/metrics_template.yaml`).
 */
export const AIRFLOW_METRIC_ALARMS: readonly AirflowMetricAlarm[] = [
  {
    id: "scheduler-heartbeat",
    metric: "scheduler_heartbeat",
    type: "counter",
    statistic: "Sum",
    comparison: "LessThanThreshold",
    threshold: 1,
    // A live scheduler beats every few seconds; three silent minutes means no scheduler
    // loop runs anywhere, and no data at all (agent or every scheduler gone) is the same.
    minutes: 3,
    treatMissingData: "breaching",
    description: "No scheduler heartbeat for 3 minutes: no DAG runs or tasks are being scheduled",
  },
  {
    id: "queued-tasks",
    metric: "executor.queued_tasks",
    type: "gauge",
    statistic: "Maximum",
    comparison: "GreaterThanThreshold",
    // Twice the default [core] parallelism (32) held for 15 minutes: a backlog the workers
    // are not draining, not a burst.
    threshold: 64,
    minutes: 15,
    treatMissingData: "notBreaching",
    description: "More than 64 tasks queued in the executor for 15 minutes: workers are not keeping up",
  },
  {
    id: "starving-tasks",
    metric: "scheduler.tasks.starving",
    type: "gauge",
    statistic: "Maximum",
    comparison: "GreaterThanThreshold",
    // Tasks that cannot be scheduled for lack of pool slots; briefly normal under load,
    // a quarter of an hour means a pool is too small or held by stuck tasks.
    threshold: 0,
    minutes: 15,
    treatMissingData: "notBreaching",
    description: "Tasks starved of pool slots for 15 minutes",
  },
];

/**
 * A task queued longer than this (seconds) for {@link QUEUED_TOO_LONG_MINUTES} minutes waits
 * far longer than a scale-out takes (scale-from-zero included; `npm run bench:scaling`).
 */
export const QUEUED_TOO_LONG_SECONDS = 600;
/** Consecutive minutes over {@link QUEUED_TOO_LONG_SECONDS} before the alarm fires. */
export const QUEUED_TOO_LONG_MINUTES = 3;

/** RDS CPU above this (percent) for {@link SUSTAINED_MINUTES}: queries or the scheduler loop are saturating the DB. */
export const DB_CPU_PERCENT = 80;

/**
 * Free storage below this (bytes). Storage autoscaling grows the volume at 10% free, so
 * staying under 2 GiB means it has reached `max_allocated_storage` or is in its cooldown.
 */
export const DB_FREE_STORAGE_BYTES = 2 * 1024 ** 3;

/**
 * Connections above this. Airflow's pools open 5-15 per component and node; a
 * db.t4g.medium allows about 340 (MySQL) or 450 (PostgreSQL), so 250 leaves headroom to act.
 */
export const DB_CONNECTIONS = 250;

/** Valkey memory above this (percent of maxmemory): with `noeviction` the broker starts refusing task messages at 100. */
export const REDIS_MEMORY_PERCENT = 80;

/** Load balancer 5xx responses per minute above this for {@link SUSTAINED_MINUTES}: an outage, not one failed request. */
export const ALB_5XX_PER_MINUTE = 5;

/** Minutes a resource metric must breach: long enough to ride out a deploy or a burst. */
export const SUSTAINED_MINUTES = 5;

/**
 * Minutes a group may stay below its desired capacity: a node boots and bootstraps in
 * well under 15 minutes, so longer means launches fail or nodes never turn healthy.
 */
export const GROUP_SHORTFALL_MINUTES = 15;

/**
 * Longest EMR runtime limit. The check is a Metrics Insights alarm, and CloudWatch
 * evaluates those over at most the last 3 hours.
 */
export const EMR_MAX_RUNTIME_LIMIT_MINUTES = 180;

/** Period of the EMR check: EMR reports every 5 minutes, so 10 always holds a datapoint. */
const EMR_PERIOD_SECONDS = 600;

/** Anything with an `arn_suffix` (an `aws_lb`, an `aws_lb_target_group`): the ALB metrics' dimension value. */
export interface HasArnSuffix {
  /** The ARN suffix. */
  readonly arnSuffix: string;
}

/** A load balancer and its target groups, for the ALB alarms. */
export interface AlarmedLoadBalancer {
  /** Short name in alarm names, e.g. "public". */
  readonly name: string;
  /** The ALB (the `LoadBalancer` dimension). */
  readonly loadBalancer: HasArnSuffix;
  /** Its target groups by short name (each the `TargetGroup` dimension). */
  readonly targetGroups: Readonly<Record<string, HasArnSuffix>>;
}

/** Props of {@link ClusterAlarms}. */
export interface ClusterAlarmsProps {
  /** `<namePrefix>-<env>`: alarm and topic names, and the Airflow metrics namespace. */
  readonly resourcePrefix: string;
  /** Cluster KMS key ARN: encrypts the topic (its key policy lets CloudWatch publish). */
  readonly kmsKeyArn: string;
  /**
   * Address subscribed to the topic.
   * @default none - the topic has no subscriber (subscribe a pager or chat hook yourself)
   */
  readonly notificationEmail?: string;
  /** The metadata DB instance (`DBInstanceIdentifier`). */
  readonly database: { readonly identifier: string };
  /**
   * The Celery broker: its replication group id and node count (1 + replicas). Nodes are
   * `<id>-001`, `<id>-002`, ... as ElastiCache names them.
   * @default none - LocalExecutor, no broker alarms
   */
  readonly broker?: { readonly replicationGroupId: string; readonly nodeCount: number };
  /** Load balancers and their target groups. */
  readonly loadBalancers: readonly AlarmedLoadBalancer[];
  /** Auto Scaling groups by role (the groups enable GroupDesiredCapacity and GroupInServiceInstances). */
  readonly autoScalingGroups: Readonly<Record<string, HasName>>;
  /**
   * Alarm when EMR clusters have been running continuously for this long (a cost-leak guard:
   * DAG_1 owns cluster lifetimes). 20 to {@link EMR_MAX_RUNTIME_LIMIT_MINUTES}.
   * @default 120
   */
  readonly emrMaxRuntimeMinutes?: number;
}

/** The alarm topic, its optional e-mail subscription and every cluster alarm. */
export class ClusterAlarms extends Construct {
  /** SNS topic every alarm notifies. */
  public readonly topic: SnsTopic;
  /** Every alarm, by id. */
  public readonly alarms: Readonly<Record<string, CloudwatchMetricAlarm>>;

  public constructor(scope: Construct, id: string, props: ClusterAlarmsProps) {
    super(scope, id);
    const emrMinutes = props.emrMaxRuntimeMinutes ?? 120;
    assertIntIn(this, "emrMaxRuntimeMinutes", emrMinutes, 20, EMR_MAX_RUNTIME_LIMIT_MINUTES);
    if (props.broker) assertIntIn(this, "broker.nodeCount", props.broker.nodeCount, 1, 6);
    const p = props.resourcePrefix;

    this.topic = new SnsTopic(this, "topic", { name: `${p}-alarms`, kmsMasterKeyId: props.kmsKeyArn });
    if (props.notificationEmail !== undefined) {
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(props.notificationEmail)) {
        throw new PropError(this, "notificationEmail", props.notificationEmail, "an e-mail address");
      }
      new SnsTopicSubscription(this, "email", {
        topicArn: this.topic.arn,
        protocol: "email",
        endpoint: props.notificationEmail,
      });
    }

    const alarms: Record<string, CloudwatchMetricAlarm> = {};
    const actions = [this.topic.arn];
    /** One alarm on one metric, or on metric math when `metricQuery` is given. */
    const alarm = (
      alarmId: string,
      spec: Omit<
        ConstructorParameters<typeof CloudwatchMetricAlarm>[2],
        "alarmName" | "alarmActions" | "okActions"
      >,
    ): void => {
      if (alarms[alarmId]) throw new PropError(this, "alarm id", alarmId, "unique alarm ids");
      alarms[alarmId] = new CloudwatchMetricAlarm(this, alarmId, {
        alarmName: alarmName(p, alarmId),
        alarmActions: actions,
        okActions: actions,
        ...spec,
      });
    };
    const sustained = {
      period: 60,
      evaluationPeriods: SUSTAINED_MINUTES,
      datapointsToAlarm: SUSTAINED_MINUTES,
    };

    // --- metadata DB -------------------------------------------------------------
    const db = { namespace: "AWS/RDS", dimensions: { DBInstanceIdentifier: props.database.identifier } };
    alarm("db-cpu", {
      ...db,
      ...sustained,
      alarmDescription: `Metadata DB CPU above ${DB_CPU_PERCENT}% for ${SUSTAINED_MINUTES} minutes`,
      metricName: "CPUUtilization",
      statistic: "Average",
      comparisonOperator: "GreaterThanThreshold",
      threshold: DB_CPU_PERCENT,
      treatMissingData: "missing",
    });
    alarm("db-free-storage", {
      ...db,
      ...sustained,
      alarmDescription: "Metadata DB free storage below 2 GiB: storage autoscaling is at its limit",
      metricName: "FreeStorageSpace",
      statistic: "Minimum",
      comparisonOperator: "LessThanThreshold",
      threshold: DB_FREE_STORAGE_BYTES,
      treatMissingData: "missing",
    });
    alarm("db-connections", {
      ...db,
      ...sustained,
      alarmDescription: `Metadata DB connections above ${DB_CONNECTIONS}`,
      metricName: "DatabaseConnections",
      statistic: "Maximum",
      comparisonOperator: "GreaterThanThreshold",
      threshold: DB_CONNECTIONS,
      treatMissingData: "missing",
    });

    // --- broker: one alarm over every node (metric math), so a failover changes nothing
    if (props.broker) {
      const broker = props.broker;
      const nodes = Array.from(
        { length: broker.nodeCount },
        (_, i) => `${broker.replicationGroupId}-${String(i + 1).padStart(3, "0")}`,
      );
      const overNodes = (
        metricName: string,
        stat: string,
        fn: "MAX" | "SUM",
      ): CloudwatchMetricAlarmMetricQuery[] => [
        ...nodes.map((node, i) => ({
          id: `m${i}`,
          returnData: false,
          metric: {
            namespace: "AWS/ElastiCache",
            metricName,
            dimensions: { CacheClusterId: node },
            period: 60,
            stat,
          },
        })),
        {
          id: "e",
          expression: `${fn}([${nodes.map((_, i) => `m${i}`).join(", ")}])`,
          label: `${metricName} (${fn.toLowerCase()} over nodes)`,
          returnData: true,
        },
      ];
      alarm("redis-memory", {
        evaluationPeriods: SUSTAINED_MINUTES,
        datapointsToAlarm: SUSTAINED_MINUTES,
        alarmDescription: `Broker memory above ${REDIS_MEMORY_PERCENT}% of maxmemory: at 100% it refuses task messages`,
        metricQuery: overNodes("DatabaseMemoryUsagePercentage", "Maximum", "MAX"),
        comparisonOperator: "GreaterThanThreshold",
        threshold: REDIS_MEMORY_PERCENT,
        treatMissingData: "missing",
      });
      alarm("redis-evictions", {
        evaluationPeriods: 1,
        alarmDescription:
          "The broker evicted keys: queued Celery messages may be lost (maxmemory-policy should be noeviction)",
        metricQuery: overNodes("Evictions", "Sum", "SUM"),
        comparisonOperator: "GreaterThanThreshold",
        threshold: 0,
        treatMissingData: "notBreaching",
      });
    }

    // --- load balancers ----------------------------------------------------------------
    for (const lb of props.loadBalancers) {
      const dims = { LoadBalancer: lb.loadBalancer.arnSuffix };
      for (const [metricName, what] of [
        ["HTTPCode_ELB_5XX_Count", "load balancer"],
        ["HTTPCode_Target_5XX_Count", "api-server"],
      ] as const) {
        alarm(`alb-${lb.name}-${metricName === "HTTPCode_ELB_5XX_Count" ? "elb" : "target"}-5xx`, {
          ...sustained,
          namespace: "AWS/ApplicationELB",
          dimensions: dims,
          alarmDescription: `More than ${ALB_5XX_PER_MINUTE} 5xx responses a minute from the ${what} for ${SUSTAINED_MINUTES} minutes`,
          metricName,
          statistic: "Sum",
          comparisonOperator: "GreaterThanThreshold",
          threshold: ALB_5XX_PER_MINUTE,
          // No requests means no errors.
          treatMissingData: "notBreaching",
        });
      }
      for (const [tgName, tg] of Object.entries(lb.targetGroups)) {
        alarm(unhealthyTargetsAlarmId(lb.name, tgName), {
          ...sustained,
          namespace: "AWS/ApplicationELB",
          dimensions: { ...dims, TargetGroup: tg.arnSuffix },
          alarmDescription: `Unhealthy ${tgName} targets behind the ${lb.name} load balancer for ${SUSTAINED_MINUTES} minutes`,
          metricName: "UnHealthyHostCount",
          statistic: "Maximum",
          comparisonOperator: "GreaterThanThreshold",
          threshold: 0,
          treatMissingData: "missing",
        });
      }
    }

    // --- node groups: in service below desired, by metric math ---------------------------
    for (const [role, group] of Object.entries(props.autoScalingGroups).sort(([a], [b]) =>
      a.localeCompare(b),
    )) {
      const metric = (metricName: string) => ({
        namespace: "AWS/AutoScaling",
        metricName,
        dimensions: { AutoScalingGroupName: group.name },
        period: 60,
        stat: "Minimum",
      });
      alarm(groupInServiceAlarmId(role), {
        evaluationPeriods: GROUP_SHORTFALL_MINUTES,
        datapointsToAlarm: GROUP_SHORTFALL_MINUTES,
        alarmDescription: `The ${role} group had fewer instances in service than desired for ${GROUP_SHORTFALL_MINUTES} minutes`,
        metricQuery: [
          { id: "desired", returnData: false, metric: metric("GroupDesiredCapacity") },
          { id: "inservice", returnData: false, metric: metric("GroupInServiceInstances") },
          {
            id: "shortfall",
            expression: "desired - inservice",
            label: "instances missing",
            returnData: true,
          },
        ],
        comparisonOperator: "GreaterThanThreshold",
        threshold: 0,
        treatMissingData: "missing",
      });
    }

    // --- Airflow's own metrics (statsd via the CloudWatch agent) -------------------------
    const airflowNamespace = airflowMetricsNamespace(p);
    for (const a of AIRFLOW_METRIC_ALARMS) {
      alarm(`airflow-${a.id}`, {
        namespace: airflowNamespace,
        metricName: `${AIRFLOW_STATSD_PREFIX}.${a.metric}`,
        statistic: a.statistic,
        period: 60,
        evaluationPeriods: a.minutes,
        datapointsToAlarm: a.minutes,
        comparisonOperator: a.comparison,
        threshold: a.threshold,
        treatMissingData: a.treatMissingData,
        alarmDescription: a.description,
      });
    }

    // Airflow 3 sends task.queued_duration only when a task starts outside the Execution
    // API, so a real cluster never emits it; the scheduler nodes' queue-depth publisher
    // reports the oldest queued task's age per queue instead (contract workerScaling).
    alarm("airflow-queued-too-long", {
      alarmDescription: `A task has waited more than ${QUEUED_TOO_LONG_SECONDS / 60} minutes in a queue for a worker`,
      evaluationPeriods: QUEUED_TOO_LONG_MINUTES,
      datapointsToAlarm: QUEUED_TOO_LONG_MINUTES,
      metricQuery: [
        {
          id: "oldest",
          // every queue at once: MAX over the Queue dimension
          expression: `SELECT MAX(${WORKER_SCALING.oldestQueuedMetricName}) FROM SCHEMA("${airflowNamespace}", ${WORKER_SCALING.queueDimension})`,
          period: 60,
          label: "oldest queued task, seconds",
          returnData: true,
        },
      ],
      comparisonOperator: "GreaterThanThreshold",
      threshold: QUEUED_TOO_LONG_SECONDS,
      treatMissingData: "notBreaching",
    });

    // --- EMR: clusters alive longer than the limit ---------------------------------------
    // EMR publishes per-cluster metrics (JobFlowId) only, and none is a cluster's age. Every
    // live cluster reports IsIdle every 5 minutes, so "IsIdle datapoints in every period of
    // the last <limit> minutes" means some cluster has been up that long. Limits: it counts
    // every cluster of the account and region, and back-to-back clusters look like one.
    const emrPeriods = Math.ceil((emrMinutes * 60) / EMR_PERIOD_SECONDS);
    alarm("emr-runtime", {
      evaluationPeriods: emrPeriods,
      datapointsToAlarm: emrPeriods,
      alarmDescription: `EMR clusters have been running for more than ${emrMinutes} minutes: DAG_1 may have leaked one`,
      metricQuery: [
        {
          id: "clusters",
          expression: 'SELECT COUNT(IsIdle) FROM SCHEMA("AWS/ElasticMapReduce", JobFlowId)',
          period: EMR_PERIOD_SECONDS,
          label: "EMR cluster datapoints",
          returnData: true,
        },
      ],
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      treatMissingData: "notBreaching",
    });

    this.alarms = alarms;
  }
}
