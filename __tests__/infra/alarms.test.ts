/**
 * Alarms: every alarm notifies the one KMS-encrypted topic (on alarm and on recovery),
 * reads the metric AWS (or the CloudWatch agent) publishes under the right namespace and
 * dimensions, and the e-mail subscription exists exactly when notificationEmail is set.
 */
import { Testing } from "cdktf";
import {
  AIRFLOW_METRIC_ALARMS,
  ClusterAlarms,
  ClusterAlarmsProps,
  QUEUED_TOO_LONG_MINUTES,
  QUEUED_TOO_LONG_SECONDS,
} from "../../modules/alarms";
import { AirflowClusterStack } from "../../modules/cluster-stack";
import {
  AIRFLOW_STATSD_PREFIX,
  CONTRACT,
  WORKER_SCALING,
  airflowMetricsNamespace,
} from "../../modules/contract";
import { AirflowConfigInput, clusterNames } from "../../modules/config";
import { Block, bareStack, config, resources } from "./helpers";

const KEY = "arn:aws:kms:us-east-1:123456789012:key/test";

const PROPS: ClusterAlarmsProps = {
  resourcePrefix: "airflow-dev",
  kmsKeyArn: KEY,
  database: { identifier: "airflow-dev-metadata" },
  broker: { replicationGroupId: "airflow-dev-broker", nodeCount: 2 },
  loadBalancers: [
    {
      name: "public",
      loadBalancer: { arnSuffix: "app/ui/1" },
      targetGroups: { ui: { arnSuffix: "targetgroup/ui/1" } },
    },
    {
      name: "internal",
      loadBalancer: { arnSuffix: "app/int/2" },
      targetGroups: {
        "execution-api": { arnSuffix: "targetgroup/exec/2" },
        flower: { arnSuffix: "targetgroup/flower/3" },
      },
    },
  ],
  autoScalingGroups: { scheduler: { name: "asg-scheduler" }, worker: { name: "asg-worker" } },
};

function synthAlarms(overrides: Partial<ClusterAlarmsProps> = {}): Record<string, Block> {
  const stack = bareStack();
  new ClusterAlarms(stack, "alarms", { ...PROPS, ...overrides });
  return JSON.parse(Testing.synth(stack)).resource as Record<string, Block>;
}

/** Alarms by alarm name. */
function alarmsOf(resource: Record<string, Block>): Record<string, Block> {
  return Object.fromEntries(
    Object.values((resource.aws_cloudwatch_metric_alarm ?? {}) as Record<string, Block>).map((a) => [
      a.alarm_name as string,
      a,
    ]),
  );
}

interface Query {
  id: string;
  expression?: string;
  return_data?: boolean;
  period?: number;
  metric?: { namespace: string; metric_name: string; dimensions: Record<string, string>; stat: string };
}

describe("ClusterAlarms", () => {
  const resource = synthAlarms({ notificationEmail: "data-team@example.com" });
  const alarms = alarmsOf(resource);
  const topicName = Object.keys(resource.aws_sns_topic as Block)[0];
  const topicArn = `\${aws_sns_topic.${topicName}.arn}`;

  it("GIVEN the alarm topic WHEN synthesized THEN it is encrypted with the cluster key", () => {
    expect((resource.aws_sns_topic as Record<string, Block>)[topicName]).toMatchObject({
      name: "airflow-dev-alarms",
      kms_master_key_id: KEY,
    });
  });

  it("GIVEN every alarm WHEN synthesized THEN it notifies the topic on alarm and on recovery, and nothing else", () => {
    expect(Object.keys(alarms).length).toBeGreaterThan(10);
    for (const a of Object.values(alarms)) {
      expect(a.alarm_actions).toEqual([topicArn]);
      expect(a.ok_actions).toEqual([topicArn]);
    }
  });

  it.each(AIRFLOW_METRIC_ALARMS.map((a) => [a.id, a] as const))(
    "GIVEN the Airflow alarm %s WHEN synthesized THEN it reads the agent's dimensionless rollup of the statsd metric",
    (id, spec) => {
      const a = alarms[`airflow-dev-airflow-${id}`];
      expect(a).toMatchObject({
        namespace: airflowMetricsNamespace("airflow-dev"),
        metric_name: `${AIRFLOW_STATSD_PREFIX}.${spec.metric}`,
        statistic: spec.statistic,
        comparison_operator: spec.comparison,
        threshold: spec.threshold,
        evaluation_periods: spec.minutes,
        treat_missing_data: spec.treatMissingData,
      });
      expect(a.dimensions).toBeUndefined();
    },
  );

  it.each(AIRFLOW_METRIC_ALARMS.map((a) => [a.id, a.metric] as const))(
    "GIVEN the Airflow alarm %s WHEN the nodes render [metrics] THEN %s is a name Airflow is allowed to send",
    (_, metric) => {
      // metrics_allow_list is the contract's list: a name outside it never reaches CloudWatch
      expect(CONTRACT.cloudwatchAgent.statsd.metrics).toContain(metric);
    },
  );

  it("GIVEN tasks waiting in a queue WHEN synthesized THEN queued-too-long reads the oldest queued task's age the scheduler nodes publish, over every queue", () => {
    const a = alarms["airflow-dev-airflow-queued-too-long"];
    expect(a).toMatchObject({
      comparison_operator: "GreaterThanThreshold",
      threshold: QUEUED_TOO_LONG_SECONDS,
      evaluation_periods: QUEUED_TOO_LONG_MINUTES,
      treat_missing_data: "notBreaching",
    });
    const [query] = a.metric_query as { expression: string }[];
    expect(query.expression).toBe(
      `SELECT MAX(${WORKER_SCALING.oldestQueuedMetricName}) FROM SCHEMA("${airflowMetricsNamespace("airflow-dev")}", ${WORKER_SCALING.queueDimension})`,
    );
  });

  it("GIVEN the scheduler heartbeat WHEN no data arrives THEN that counts as breaching (no scheduler, no metric)", () => {
    expect(alarms["airflow-dev-airflow-scheduler-heartbeat"]).toMatchObject({
      metric_name: "airflow.scheduler_heartbeat",
      treat_missing_data: "breaching",
    });
  });

  it.each([
    ["db-cpu", "CPUUtilization"],
    ["db-free-storage", "FreeStorageSpace"],
    ["db-connections", "DatabaseConnections"],
  ])(
    "GIVEN the DB alarm %s WHEN synthesized THEN it reads AWS/RDS %s of the metadata instance",
    (id, metric) => {
      expect(alarms[`airflow-dev-${id}`]).toMatchObject({
        namespace: "AWS/RDS",
        metric_name: metric,
        dimensions: { DBInstanceIdentifier: "airflow-dev-metadata" },
      });
    },
  );

  it.each([
    ["redis-memory", "DatabaseMemoryUsagePercentage", "MAX"],
    ["redis-evictions", "Evictions", "SUM"],
  ])("GIVEN the broker alarm %s WHEN synthesized THEN it takes %s over every node (%s)", (id, metric, fn) => {
    const queries = alarms[`airflow-dev-${id}`].metric_query as Query[];
    const metrics = queries.filter((q) => q.metric);
    expect(metrics.map((q) => [q.metric?.namespace, q.metric?.metric_name, q.metric?.dimensions])).toEqual([
      ["AWS/ElastiCache", metric, { CacheClusterId: "airflow-dev-broker-001" }],
      ["AWS/ElastiCache", metric, { CacheClusterId: "airflow-dev-broker-002" }],
    ]);
    expect(queries.filter((q) => q.return_data)).toEqual([
      expect.objectContaining({ expression: `${fn}([m0, m1])` }),
    ]);
  });

  it.each([
    ["public", "elb", "HTTPCode_ELB_5XX_Count", "app/ui/1"],
    ["public", "target", "HTTPCode_Target_5XX_Count", "app/ui/1"],
    ["internal", "elb", "HTTPCode_ELB_5XX_Count", "app/int/2"],
    ["internal", "target", "HTTPCode_Target_5XX_Count", "app/int/2"],
  ])("GIVEN the %s ALB WHEN synthesized THEN its %s 5xx alarm reads %s", (lb, kind, metric, suffix) => {
    expect(alarms[`airflow-dev-alb-${lb}-${kind}-5xx`]).toMatchObject({
      namespace: "AWS/ApplicationELB",
      metric_name: metric,
      statistic: "Sum",
      dimensions: { LoadBalancer: suffix },
    });
  });

  it.each([
    ["public", "ui", "app/ui/1", "targetgroup/ui/1"],
    ["internal", "execution-api", "app/int/2", "targetgroup/exec/2"],
    ["internal", "flower", "app/int/2", "targetgroup/flower/3"],
  ])(
    "GIVEN the %s ALB's %s target group WHEN synthesized THEN unhealthy hosts alarm on both dimensions",
    (lb, tg, lbSuffix, tgSuffix) => {
      expect(alarms[`airflow-dev-alb-${lb}-${tg}-unhealthy`]).toMatchObject({
        namespace: "AWS/ApplicationELB",
        metric_name: "UnHealthyHostCount",
        dimensions: { LoadBalancer: lbSuffix, TargetGroup: tgSuffix },
        threshold: 0,
      });
    },
  );

  it.each([
    ["scheduler", "asg-scheduler"],
    ["worker", "asg-worker"],
  ])("GIVEN the %s group WHEN synthesized THEN desired minus in-service above 0 alarms", (role, asg) => {
    const a = alarms[`airflow-dev-${role}-in-service`];
    const queries = a.metric_query as Query[];
    expect(
      queries.filter((q) => q.metric).map((q) => [q.id, q.metric?.metric_name, q.metric?.dimensions]),
    ).toEqual([
      ["desired", "GroupDesiredCapacity", { AutoScalingGroupName: asg }],
      ["inservice", "GroupInServiceInstances", { AutoScalingGroupName: asg }],
    ]);
    expect(queries.find((q) => q.return_data)?.expression).toBe("desired - inservice");
    expect(a).toMatchObject({ comparison_operator: "GreaterThanThreshold", threshold: 0 });
  });

  it.each([
    [20, 2],
    [120, 12],
    [180, 18],
  ])(
    "GIVEN emrMaxRuntimeMinutes %i WHEN synthesized THEN EMR cluster datapoints must fill %i ten-minute periods",
    (minutes, periods) => {
      const a = alarmsOf(synthAlarms({ emrMaxRuntimeMinutes: minutes }))["airflow-dev-emr-runtime"];
      expect(a).toMatchObject({
        evaluation_periods: periods,
        datapoints_to_alarm: periods,
        treat_missing_data: "notBreaching",
      });
      expect(a.metric_query).toEqual([
        expect.objectContaining({
          expression: 'SELECT COUNT(IsIdle) FROM SCHEMA("AWS/ElasticMapReduce", JobFlowId)',
          period: 600,
        }),
      ]);
    },
  );

  it.each([10, 181, 90.5])(
    "GIVEN emrMaxRuntimeMinutes %p WHEN built THEN one line names the field and the range",
    (minutes) => {
      expect(() => synthAlarms({ emrMaxRuntimeMinutes: minutes })).toThrow(
        /alarms: emrMaxRuntimeMinutes: got [\d.]+; allowed: an integer from 20 to 180$/,
      );
    },
  );

  it("GIVEN notificationEmail WHEN synthesized THEN exactly one e-mail subscription to the topic exists", () => {
    expect(Object.values(resource.aws_sns_topic_subscription as Block)).toEqual([
      { topic_arn: topicArn, protocol: "email", endpoint: "data-team@example.com" },
    ]);
  });

  it("GIVEN no notificationEmail WHEN synthesized THEN there is no subscription", () => {
    expect(synthAlarms().aws_sns_topic_subscription).toBeUndefined();
  });

  it("GIVEN no broker WHEN synthesized THEN there are no broker alarms", () => {
    const names = Object.keys(alarmsOf(synthAlarms({ broker: undefined })));
    expect(names.filter((n) => n.includes("redis"))).toEqual([]);
  });
});

describe("alarms in the cluster stack", () => {
  function synthCluster(input: Partial<AirflowConfigInput>): Record<string, Block> {
    const c = config(input);
    const stack = new AirflowClusterStack(Testing.app(), clusterNames(c).clusterStack, { config: c });
    return alarmsOf({
      aws_cloudwatch_metric_alarm: resources(Testing.synth(stack), "aws_cloudwatch_metric_alarm"),
    });
  }

  it("GIVEN CeleryExecutor WHEN synthesized THEN each node group, both ALBs and the broker are alarmed on real references", () => {
    // GIVEN both ALBs (uiAllowedCidrs) and a replicated broker
    const alarms = synthCluster({
      executor: "CeleryExecutor",
      uiAllowedCidrs: ["203.0.113.0/24"],
      redis: { replicas: 1 },
    });
    for (const role of ["api-server", "scheduler", "worker"]) {
      const q = alarms[`airflow-dev-${role}-in-service`].metric_query as Query[];
      expect(q[0].metric?.dimensions.AutoScalingGroupName).toMatch(/^\$\{aws_autoscaling_group\..*\.name\}$/);
    }
    expect(alarms["airflow-dev-alb-public-ui-unhealthy"].dimensions).toEqual({
      LoadBalancer: expect.stringMatching(/^\$\{aws_lb\..*\.arn_suffix\}$/),
      TargetGroup: expect.stringMatching(/^\$\{aws_lb_target_group\..*\.arn_suffix\}$/),
    });
    expect(alarms["airflow-dev-alb-internal-flower-unhealthy"]).toBeDefined();
    expect(alarms["airflow-dev-db-cpu"].dimensions).toEqual({
      DBInstanceIdentifier: expect.stringMatching(/^\$\{aws_db_instance\..*\.identifier\}$/),
    });
    // redis.replicas 1: two nodes.
    expect((alarms["airflow-dev-redis-memory"].metric_query as Query[]).filter((q) => q.metric)).toHaveLength(
      2,
    );
  });

  it("GIVEN the default dev cluster WHEN synthesized THEN no public-ALB alarm watches a load balancer that does not exist, and one broker node is watched", () => {
    const alarms = synthCluster({});
    expect(Object.keys(alarms).filter((n) => n.includes("alb-public"))).toEqual([]);
    expect(alarms["airflow-dev-alb-internal-execution-api-unhealthy"]).toBeDefined();
    expect((alarms["airflow-dev-redis-memory"].metric_query as Query[]).filter((q) => q.metric)).toHaveLength(
      1,
    );
  });

  it("GIVEN the cluster key WHEN synthesized THEN it encrypts the alarm topic and lets CloudWatch publish to it (else alarms are dropped)", () => {
    const c = config({ accountId: "123456789012" });
    const synth = Testing.synth(
      new AirflowClusterStack(Testing.app(), clusterNames(c).clusterStack, { config: c }),
    );
    const [keyName, key] = Object.entries(resources(synth, "aws_kms_key"))[0];
    expect(Object.values(resources(synth, "aws_sns_topic"))).toEqual([
      expect.objectContaining({ kms_master_key_id: `\${aws_kms_key.${keyName}.arn}` }),
    ]);
    const statements = JSON.parse(key.policy as string).Statement as { Principal: unknown }[];
    expect(
      statements.filter((st) => JSON.stringify(st.Principal).includes("cloudwatch.amazonaws.com")),
    ).toEqual([
      {
        Sid: "CloudWatchAlarmsPublishToThisAccountsTopics",
        Effect: "Allow",
        Principal: { Service: "cloudwatch.amazonaws.com" },
        Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
        Resource: "*",
        Condition: {
          StringEquals: {
            "aws:SourceAccount": expect.stringMatching(/^\$\{data\.aws_caller_identity\..*\.account_id\}$/),
          },
        },
      },
    ]);
  });

  it("GIVEN LocalExecutor WHEN synthesized THEN the standalone group and the public ALB are alarmed, and there is no broker", () => {
    const names = Object.keys(synthCluster({ executor: "LocalExecutor" }));
    expect(names).toContain("airflow-dev-standalone-in-service");
    expect(names.filter((n) => n.includes("redis") || n.includes("internal"))).toEqual([]);
  });
});
