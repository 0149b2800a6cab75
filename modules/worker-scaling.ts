/**
 * Worker autoscaling on the Airflow queue: target tracking on the scheduler nodes'
 * `WorkersNeeded` signal (`ceil((running + queued) / worker_concurrency)`, the Helm chart's
 * KEDA query; settings contract `workerScaling`), plus a step policy that starts the fleet
 * when it is at zero.
 *
 * Target tracking needs a per-instance metric (doubling the fleet must halve it), so it
 * tracks WorkersNeeded / GroupInServiceInstances at a target of 1: desired = in-service x
 * (needed / in-service) / 1 = needed. At zero in-service workers that quotient has no
 * value and target tracking multiplies the current capacity (0) anyway, so it can never
 * leave zero. The step policy sets the capacity to WorkersNeeded itself while the group's
 * desired capacity is 0 (one step per worker count, up to the group's max or the 20 steps
 * a policy may hold), so a burst at zero gets its whole fleet in one alarm period instead of
 * one worker and a target-tracking round after that worker boots.
 */
import { AutoscalingPolicy } from "@cdktf/provider-aws/lib/autoscaling-policy";
import { CloudwatchMetricAlarm } from "@cdktf/provider-aws/lib/cloudwatch-metric-alarm";
import { Construct } from "constructs";
import { HasName, WORKER_SCALING, airflowMetricsNamespace, assertIntIn } from "./contract";

/** Seconds between the publisher's datapoints (airflow-queue-depth.timer). */
export const SIGNAL_PERIOD_SECONDS = 60;

/** EC2 Auto Scaling's quota of step adjustments in one step scaling policy. */
export const MAX_STEP_ADJUSTMENTS = 20;

/** Properties of {@link WorkerScaling}. */
export interface WorkerScalingProps {
  /** `<namePrefix>-<env>`: the signal's namespace and the policies' name prefix. */
  readonly resourcePrefix: string;
  /** The worker Auto Scaling group (its group metrics must be enabled). */
  readonly group: HasName;
  /** The group's max size: the largest capacity the from-zero policy sets. */
  readonly maxSize: number;
  /**
   * Add the step policy that starts the fleet from zero (the group's min is 0).
   * @default false
   */
  readonly scaleFromZero?: boolean;
}

/** The worker group's queue-depth policies. */
export class WorkerScaling extends Construct {
  /** Target tracking: desired = WorkersNeeded of the workers' queue. */
  public readonly tracking: AutoscalingPolicy;
  /** Step policy setting the capacity to WorkersNeeded at zero (when `scaleFromZero`). */
  public readonly fromZero?: AutoscalingPolicy;
  /** The alarm that runs {@link fromZero}. */
  public readonly fromZeroAlarm?: CloudwatchMetricAlarm;

  public constructor(scope: Construct, id: string, props: WorkerScalingProps) {
    super(scope, id);
    assertIntIn(this, "maxSize", props.maxSize, 1, Number.MAX_SAFE_INTEGER);
    const needed = {
      namespace: airflowMetricsNamespace(props.resourcePrefix),
      metricName: WORKER_SCALING.metricName,
      dimensions: [{ name: WORKER_SCALING.queueDimension, value: WORKER_SCALING.queue }],
    };
    const groupMetric = (metricName: string) => ({
      namespace: "AWS/AutoScaling",
      metricName,
      dimensions: [{ name: "AutoScalingGroupName", value: props.group.name }],
    });
    this.tracking = new AutoscalingPolicy(this, "queue-depth", {
      name: `${props.resourcePrefix}-worker-queue-depth`,
      autoscalingGroupName: props.group.name,
      policyType: "TargetTrackingScaling",
      targetTrackingConfiguration: {
        customizedMetricSpecification: {
          metrics: [
            // Every scheduler publishes the same value: Maximum reads it once.
            { id: "needed", metricStat: { metric: needed, stat: "Maximum" }, returnData: false },
            {
              id: "inservice",
              metricStat: { metric: groupMetric("GroupInServiceInstances"), stat: "Average" },
              returnData: false,
            },
            {
              id: "perworker",
              expression: "needed / inservice",
              label: "WorkersNeeded per in-service worker",
              returnData: true,
            },
          ],
        },
        targetValue: 1,
      },
    });
    if (!props.scaleFromZero) return;
    // Exact capacity is safe here: the alarm's value is non-zero only while the group's
    // desired capacity reads 0, so a repeat within the group metric's one-minute lag sets the
    // same capacity again, and target tracking cannot act before a worker is in service.
    const steps = Math.min(props.maxSize, MAX_STEP_ADJUSTMENTS);
    this.fromZero = new AutoscalingPolicy(this, "from-zero", {
      name: `${props.resourcePrefix}-worker-from-zero`,
      autoscalingGroupName: props.group.name,
      policyType: "StepScaling",
      adjustmentType: "ExactCapacity",
      metricAggregationType: "Maximum",
      // Bounds are relative to the alarm threshold (1): WorkersNeeded n falls in [n-1, n).
      stepAdjustment: Array.from({ length: steps }, (_, i) => ({
        metricIntervalLowerBound: String(i),
        ...(i + 1 < steps ? { metricIntervalUpperBound: String(i + 1) } : {}),
        scalingAdjustment: i + 1,
      })),
    });
    this.fromZeroAlarm = new CloudwatchMetricAlarm(this, "from-zero-alarm", {
      alarmName: `${props.resourcePrefix}-worker-from-zero`,
      alarmDescription: "Work is queued and the worker group is at zero: start WorkersNeeded workers",
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      // No signal means no scheduler is publishing: nothing to start a worker for.
      treatMissingData: "notBreaching",
      metricQuery: [
        {
          id: "needed",
          metric: { ...metricFields(needed), period: SIGNAL_PERIOD_SECONDS, stat: "Maximum" },
          returnData: false,
        },
        {
          id: "desired",
          metric: {
            ...metricFields(groupMetric("GroupDesiredCapacity")),
            period: SIGNAL_PERIOD_SECONDS,
            stat: "Maximum",
          },
          returnData: false,
        },
        {
          id: "start",
          expression: "IF(desired == 0, needed, 0)",
          label: "WorkersNeeded while the group is at zero",
          returnData: true,
        },
      ],
      alarmActions: [this.fromZero.arn],
    });
  }
}

/** A metric as an alarm's metric query spells it (dimensions as a map). */
function metricFields(m: {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: readonly { readonly name: string; readonly value: string }[];
}): { namespace: string; metricName: string; dimensions: Record<string, string> } {
  return {
    namespace: m.namespace,
    metricName: m.metricName,
    dimensions: Object.fromEntries(m.dimensions.map((d) => [d.name, d.value])),
  };
}
