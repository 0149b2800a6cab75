/**
 * Nodes: one reusable {@link NodeGroup} (launch template from the golden AMI + Auto
 * Scaling group with instance refresh) and {@link AirflowNodeGroups}, which lays out the
 * roles of the settings contract: api-server (+ Flower), schedulers, Celery workers - or
 * a single standalone node with LocalExecutor.
 *
 * User-data carries only pointers (role, parameter/secret prefixes, region, settings
 * revision); the bootstrap on the AMI fetches everything else with the instance role.
 */
import {
  AutoscalingGroup,
  AutoscalingGroupInitialLifecycleHook,
} from "@cdktf/provider-aws/lib/autoscaling-group";
import { AutoscalingLifecycleHook } from "@cdktf/provider-aws/lib/autoscaling-lifecycle-hook";
import { DataAwsAmi } from "@cdktf/provider-aws/lib/data-aws-ami";
import { LaunchTemplate } from "@cdktf/provider-aws/lib/launch-template";
import { Fn, Token } from "cdktf";
import { Construct } from "constructs";
import {
  AMI_NAME_FILTER,
  Architecture,
  CONTRACT,
  HasArn,
  HasId,
  NodeRole,
  PropError,
  assertIntIn,
  groupInServiceAlarmName,
  nodeGroupName,
} from "./contract";
import { WorkerScaling } from "./worker-scaling";

/** Name of the worker group's termination lifecycle hook (the node completes it after draining). */
export const DRAIN_HOOK_NAME = CONTRACT.workerDrain.lifecycleHookName;
/** The AMI tag Packer records `worker_stop_timeout` in: the worker's Celery TimeoutStopSec. */
export const WORKER_STOP_TIMEOUT_TAG = "WorkerStopTimeout";
/** Drain hook margin over the worker's stop timeout: the drain run's own start and API call. */
export const DRAIN_MARGIN_SECONDS = 300;
/** Longest heartbeat timeout a lifecycle hook accepts (Auto Scaling API). */
export const MAX_HOOK_HEARTBEAT_SECONDS = 7200;
/** The stop timeout Packer bakes when none is given (packer/variables.pkr.hcl). */
export const DEFAULT_WORKER_STOP_TIMEOUT_SECONDS = 3600;

/**
 * Tag keys an instance with instance metadata tags enabled can carry (EC2 refuses to launch
 * otherwise): letters, digits and `+ - = . , _ : @`, never `.`, `..` or `_index` alone.
 */
export const IMDS_TAG_KEY = /^(?!\.{1,2}$|_index$)[A-Za-z0-9+\-=.,_:@]{1,128}$/;

/** Name of every group's launch lifecycle hook (the bootstrap completes it CONTINUE or ABANDON). */
export const LAUNCH_HOOK_NAME = CONTRACT.launchHook.lifecycleHookName;
/**
 * Launch hook heartbeat timeout: boot and settings, the non-migrating roles' wait for the
 * migration (the bootstrap's default AIRFLOW_MIGRATION_WAIT) and the role's health wait,
 * all from the settings contract, so the hook outlasts every wait the bootstrap makes.
 */
export const LAUNCH_HOOK_SECONDS =
  CONTRACT.launchHook.bootSeconds +
  CONTRACT.launchHook.migrationWaitSeconds +
  CONTRACT.launchHook.healthWaitSeconds;

/** Where the bootstrap finds the node's environment. */
export const NODE_ENV_FILE = "/etc/airflow/node.env";
/** The bootstrap baked into the AMI (packer/files/bootstrap). */
export const BOOTSTRAP = "/opt/airflow/bin/airflow-bootstrap";

/**
 * Renders user-data: writes exactly the contract's `userData.keys` as KEY=value lines to
 * {@link NODE_ENV_FILE}, then runs the bootstrap. Values may be Terraform tokens.
 * @throws when a key is missing, unknown or a value could break the env file
 */
export function renderUserData(env: Readonly<Record<string, string>>): string {
  const expected = CONTRACT.userData.keys;
  const missing = expected.filter((k) => env[k] === undefined || env[k] === "");
  const unknown = Object.keys(env).filter((k) => !expected.includes(k));
  if (missing.length || unknown.length) {
    const problems = [
      ...(missing.length ? [`missing ${missing.join(", ")}`] : []),
      ...(unknown.length ? [`unknown ${unknown.join(", ")}`] : []),
    ];
    throw new PropError(
      "user-data",
      "keys",
      problems.join("; "),
      `exactly ${expected.join(", ")} (config/settings-contract.json userData.keys)`,
    );
  }
  for (const k of expected) {
    const v = env[k];
    if (!Token.isUnresolved(v) && !/^[A-Za-z0-9/._:-]+$/.test(v)) {
      throw new PropError("user-data", k, v, "letters, digits and / . _ : -");
    }
  }
  const lines = expected.map((k) => `${k}=${env[k]}`).join("\n");
  // Quoted heredoc: the shell expands nothing; Terraform has already resolved ${...}.
  return [
    "#!/bin/bash",
    "# Pointers only - never a secret. The bootstrap reads settings from SSM and secrets",
    "# from Secrets Manager with the instance role.",
    "set -euo pipefail",
    "install -d -m 0755 /etc/airflow",
    `cat > ${NODE_ENV_FILE} <<'NODE_ENV'`,
    lines,
    "NODE_ENV",
    `chmod 0644 ${NODE_ENV_FILE}`,
    `exec ${BOOTSTRAP}`,
    "",
  ].join("\n");
}

/**
 * Splits a string into literal parts and whole tokens. Terraform functions wrapped
 * around a string with embedded `${...}` render incorrectly in cdktf; a join() over
 * parts that are each either plain text or one whole reference renders exactly.
 */
export function tokenSafeParts(s: string): string[] {
  // cdktf encodes a string token as `${TfToken[TOKEN.<n>]}`; each such piece, on its
  // own, resolves to the reference it stands for.
  return s.split(/(\$\{TfToken\[[^\]]+\]\})/).filter((part) => part !== "");
}

/** Properties of {@link GoldenImage}. */
export interface GoldenImageProps {
  /** CPU architecture of the instance types: an image baked for the other one would not boot. */
  readonly architecture: Architecture;
  /**
   * Name filter of the Packer-built image; the newest available match wins.
   * @default AMI_NAME_FILTER - every bake Packer names
   */
  readonly name?: string;
  /**
   * Accounts (or "self", "amazon") that may own the image.
   * @default ["self"]
   */
  readonly owners?: readonly string[];
  /**
   * Exact AMI id; the name lookup is skipped.
   * @default none - the newest match of `name`
   */
  readonly id?: string;
  /**
   * Pin the bake by its `GitRevision` tag: the newest match of `name` built from that commit.
   * @default none - any bake
   */
  readonly gitRevision?: string;
}

/**
 * The Packer-built golden AMI of the instance types' architecture: the newest match of
 * `name` (of the bake tagged `gitRevision` when set), or exactly `id`. Prod pins one of
 * the two, so node groups roll only when someone changes the pin.
 */
export class GoldenImage extends Construct {
  /** The AMI data source. */
  public readonly ami: DataAwsAmi;
  /** AMI id. */
  public readonly imageId: string;
  /** Root device name of the AMI (for the encrypted root volume mapping). */
  public readonly rootDeviceName: string;
  /** The image's Celery worker TimeoutStopSec (its `WorkerStopTimeout` tag), a Terraform number. */
  public readonly workerStopTimeoutSeconds: number;
  /**
   * HCL expression (without `${}`) of the image's root snapshot size in GiB: a root volume
   * smaller than the snapshot fails every launch, so the launch templates check it at plan.
   */
  public readonly rootSnapshotGbExpression: string;

  public constructor(scope: Construct, id: string, props: GoldenImageProps) {
    super(scope, id);
    if (props.architecture !== "x86_64" && props.architecture !== "arm64") {
      throw new PropError(this, "architecture", props.architecture, '"x86_64" or "arm64"');
    }
    const owners = props.owners ?? ["self"];
    if (owners.length === 0) throw new PropError(this, "owners", owners, 'one or more owners such as "self"');
    if (props.id && props.gitRevision) {
      throw new PropError(
        this,
        "gitRevision",
        props.gitRevision,
        "omitted when id is set (one pin, not two)",
      );
    }
    const architecture = { name: "architecture", values: [props.architecture] };
    const ami = new DataAwsAmi(this, "ami", {
      mostRecent: true,
      owners: [...owners],
      // Filtering on the architecture keeps the newest image of any other kind from winning.
      filter: props.id
        ? [{ name: "image-id", values: [props.id] }, architecture]
        : [
            { name: "name", values: [props.name ?? AMI_NAME_FILTER] },
            { name: "state", values: ["available"] },
            architecture,
            ...(props.gitRevision ? [{ name: "tag:GitRevision", values: [props.gitRevision] }] : []),
          ],
    });
    this.ami = ami;
    this.imageId = ami.id;
    this.rootDeviceName = ami.rootDeviceName;
    const data = `data.aws_ami.${ami.friendlyUniqueId}`;
    this.rootSnapshotGbExpression = `coalesce(one([for m in ${data}.block_device_mappings : tonumber(m.ebs.volume_size) if m.device_name == ${data}.root_device_name]), 0)`;
    // Missing tag (an image baked before the tag existed): Packer's default.
    this.workerStopTimeoutSeconds = Token.asNumber(
      Fn.tonumber(Fn.lookup(ami.tags, WORKER_STOP_TIMEOUT_TAG, String(DEFAULT_WORKER_STOP_TIMEOUT_SECONDS))),
    );
  }
}

/** Properties of {@link NodeGroup}. */
export interface NodeGroupProps {
  /** `<namePrefix>-<env>`: the group is `<resourcePrefix>-<role>`. */
  readonly resourcePrefix: string;
  /** `/<namePrefix>/<env>`: where the bootstrap reads the settings (user-data pointer). */
  readonly parameterPrefix: string;
  /** `<namePrefix>/<env>`: where the bootstrap reads the secrets (user-data pointer). */
  readonly secretPrefix: string;
  /** AWS region the bootstrap calls SSM and Secrets Manager in. */
  readonly region: string;
  /**
   * Extra tags on the instances and their volumes (Auto Scaling launches them, so the
   * provider's default tags never reach them).
   * @default {}
   */
  readonly tags?: Readonly<Record<string, string>>;
  /** Node role: selects the systemd units the bootstrap starts. */
  readonly role: NodeRole;
  /** EC2 instance type. */
  readonly instanceType: string;
  /** Minimum instances. */
  readonly minSize: number;
  /** Maximum instances. */
  readonly maxSize: number;
  /**
   * Desired instances, managed by Terraform.
   * @default none - Auto Scaling owns it (starts at minSize), for groups with a scaling policy
   */
  readonly desiredCapacity?: number;
  /** The golden AMI. */
  readonly image: GoldenImage;
  /** Private subnets to launch into. */
  readonly subnets: readonly HasId[];
  /** Security groups of the instances. */
  readonly securityGroups: readonly HasId[];
  /** Instance profile of the instances. */
  readonly instanceProfile: HasArn;
  /** AIRFLOW_SETTINGS_REVISION (see settings.ts `settingsRevision`). */
  readonly settingsRevision: string;
  /**
   * Target groups the instances register with; the group then uses ELB health checks.
   * @default [] - EC2 health checks
   */
  readonly targetGroups?: readonly HasArn[];
  /**
   * Root volume size in GiB (gp3, encrypted).
   * @default 30
   */
  readonly rootVolumeGb?: number;
  /**
   * EC2 detailed monitoring (1-minute instance metrics, billed per metric).
   * @default true
   */
  readonly detailedMonitoring?: boolean;
  /**
   * Seconds after launch before health checks count (boot + bootstrap + DB migration).
   * @default 600
   */
  readonly healthCheckGracePeriodSeconds?: number;
  /**
   * Seconds a new instance needs before its metrics count and instance refresh moves on
   * (the group's default_instance_warmup).
   * @default 300
   */
  readonly instanceWarmupSeconds?: number;
  /**
   * Termination lifecycle hook timeout in seconds (a number or a Terraform number token):
   * how long a terminating instance may drain (Celery warm shutdown) before it is
   * terminated anyway. The node completes the hook itself once drained. Busy instances
   * carry scale-in protection, so instance refresh replaces them too and lets them drain.
   * @default none - no termination hook
   */
  readonly drainTimeoutSeconds?: number;
  /**
   * Run on Spot: a mixed instances policy of Spot only, with capacity rebalancing; the node
   * drains on a rebalance recommendation or an interruption notice as on scale-in.
   * @default false - on-demand
   */
  readonly spot?: boolean;
  /**
   * Instance refresh: minimum healthy percentage during a rolling replacement. With the
   * default maximum of 200 % new instances launch before old ones terminate.
   * @default 100
   */
  readonly minHealthyPercentage?: number;
  /**
   * CloudWatch alarms, by name, that roll an instance refresh back when one goes off. Names,
   * not references: the alarms watch this group, so a reference would be a cycle.
   * @default [] - no alarm-based rollback (a refresh still rolls back when it fails)
   */
  readonly rollbackAlarmNames?: readonly string[];
}

/** A launch template + Auto Scaling group for one node role. */
export class NodeGroup extends Construct {
  /** The launch template (a new version on every user-data or AMI change). */
  public readonly launchTemplate: LaunchTemplate;
  /** The Auto Scaling group. */
  public readonly autoScalingGroup: AutoscalingGroup;
  /** The rendered user-data (before base64). */
  public readonly userData: string;

  public constructor(scope: Construct, id: string, props: NodeGroupProps) {
    super(scope, id);
    const { role } = props;
    if (!(role in CONTRACT.roles)) {
      throw new PropError(this, "role", role, Object.keys(CONTRACT.roles).join(", "));
    }
    const intIn = (field: string, v: number | undefined, min: number, max: number): void =>
      assertIntIn(this, field, v, min, max);
    intIn("minSize", props.minSize, 0, 100);
    intIn("maxSize", props.maxSize, 1, 100);
    intIn("rootVolumeGb", props.rootVolumeGb, 8, 16384);
    intIn("healthCheckGracePeriodSeconds", props.healthCheckGracePeriodSeconds, 0, 7200);
    intIn("instanceWarmupSeconds", props.instanceWarmupSeconds, 0, 3600);
    // Lifecycle hook heartbeat timeout: 30 s to 2 h (a token is the AMI-derived, clamped value).
    const drainTimeout = props.drainTimeoutSeconds;
    const drainKnown = drainTimeout !== undefined && !Token.isUnresolved(drainTimeout);
    if (drainKnown) intIn("drainTimeoutSeconds", drainTimeout, 30, MAX_HOOK_HEARTBEAT_SECONDS);
    intIn("minHealthyPercentage", props.minHealthyPercentage, 0, 100);
    if (props.minSize > props.maxSize) {
      throw new PropError(this, "minSize", props.minSize, `at most maxSize (${props.maxSize})`);
    }
    if (props.desiredCapacity !== undefined) {
      intIn("desiredCapacity", props.desiredCapacity, props.minSize, props.maxSize);
    }
    if (props.subnets.length === 0) throw new PropError(this, "subnets", 0, "1 or more private subnets");
    if (props.securityGroups.length === 0) {
      throw new PropError(this, "securityGroups", 0, "1 or more security groups");
    }

    const rootVolumeGb = props.rootVolumeGb ?? 30;
    const name = nodeGroupName(props.resourcePrefix, role);
    const tags: Record<string, string> = {
      ...props.tags,
      Name: name,
      "airflow:cluster": props.resourcePrefix,
      "airflow:role": role,
    };
    // Instance metadata tags are on (the drain reads its group name there): EC2 refuses to
    // launch an instance whose tag keys IMDS cannot serve.
    for (const key of Object.keys(tags)) {
      if (!IMDS_TAG_KEY.test(key)) {
        throw new PropError(
          this,
          `tags.${key}`,
          key,
          "instance tag keys of letters, digits and + - = . , _ : @ (no spaces or '/'; instance metadata tags are on)",
        );
      }
    }

    this.userData = renderUserData({
      AIRFLOW_ROLE: role,
      AIRFLOW_PARAMETER_PREFIX: props.parameterPrefix,
      AIRFLOW_SECRET_PREFIX: props.secretPrefix,
      AWS_REGION: props.region,
      AIRFLOW_SETTINGS_REVISION: props.settingsRevision,
    });

    this.launchTemplate = new LaunchTemplate(this, "template", {
      name,
      description: `Airflow ${role} node from the golden AMI`,
      imageId: props.image.imageId,
      instanceType: props.instanceType,
      iamInstanceProfile: { arn: props.instanceProfile.arn },
      vpcSecurityGroupIds: props.securityGroups.map((s) => s.id),
      userData: Fn.base64encode(Fn.join("", tokenSafeParts(this.userData))),
      updateDefaultVersion: true,
      // IMDSv2 only, one hop: containers/processes behind a NAT hop cannot steal the role.
      // Instance tags in IMDS: a node finds its group (aws:autoscaling:groupName) without
      // ec2:DescribeTags, which IAM cannot scope.
      metadataOptions: {
        httpEndpoint: "enabled",
        httpTokens: "required",
        httpPutResponseHopLimit: 1,
        instanceMetadataTags: "enabled",
      },
      monitoring: { enabled: props.detailedMonitoring ?? true },
      blockDeviceMappings: [
        {
          deviceName: props.image.rootDeviceName,
          ebs: {
            volumeSize: rootVolumeGb,
            volumeType: "gp3",
            encrypted: "true",
            deleteOnTermination: "true",
          },
        },
      ],
      tagSpecifications: [
        { resourceType: "instance", tags },
        { resourceType: "volume", tags },
      ],
      lifecycle: {
        precondition: [
          {
            condition: `\${${rootVolumeGb} >= ${props.image.rootSnapshotGbExpression}}`,
            errorMessage: `rootVolumeGb ${rootVolumeGb} is smaller than the golden AMI's root snapshot (\${${props.image.rootSnapshotGbExpression}} GiB): set rootVolumeGb to at least that, or use a bake of at most ${rootVolumeGb} GiB`,
          },
        ],
      },
    });

    const targetGroups = props.targetGroups ?? [];
    const hooks: AutoscalingGroupInitialLifecycleHook[] = [
      {
        // A new node stays Pending:Wait - out of service and out of its target groups -
        // until the bootstrap has seen its role healthy (CONTINUE). A failed bootstrap, or
        // none at all, ends in ABANDON: the group terminates the node and launches another.
        name: LAUNCH_HOOK_NAME,
        lifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        heartbeatTimeout: LAUNCH_HOOK_SECONDS,
        defaultResult: "ABANDON",
      },
    ];
    if (drainTimeout !== undefined) {
      hooks.push({
        // The node sees target-lifecycle-state=Terminated in IMDS, stops Celery warmly
        // (running tasks finish, no new ones) and completes this hook; CONTINUE after
        // the timeout if it never does.
        name: DRAIN_HOOK_NAME,
        lifecycleTransition: "autoscaling:EC2_INSTANCE_TERMINATING",
        heartbeatTimeout: drainTimeout,
        defaultResult: "CONTINUE",
      });
    }
    const warmupSeconds = props.instanceWarmupSeconds ?? 300;
    const rollbackAlarms = props.rollbackAlarmNames ?? [];
    const template = {
      id: this.launchTemplate.id,
      version: Token.asString(this.launchTemplate.latestVersion),
    };
    this.autoScalingGroup = new AutoscalingGroup(this, "group", {
      name,
      minSize: props.minSize,
      maxSize: props.maxSize,
      desiredCapacity: props.desiredCapacity,
      vpcZoneIdentifier: props.subnets.map((s) => s.id),
      ...(props.spot
        ? {
            // Spot only, in the pools with the most spare capacity at the lowest price;
            // capacity rebalancing launches a replacement on a rebalance recommendation.
            mixedInstancesPolicy: {
              instancesDistribution: {
                onDemandBaseCapacity: 0,
                onDemandPercentageAboveBaseCapacity: 0,
                spotAllocationStrategy: "price-capacity-optimized",
              },
              launchTemplate: {
                launchTemplateSpecification: { launchTemplateId: template.id, version: template.version },
              },
            },
            capacityRebalance: true,
          }
        : { launchTemplate: template }),
      targetGroupArns: targetGroups.map((t) => t.arn),
      healthCheckType: targetGroups.length ? "ELB" : "EC2",
      healthCheckGracePeriod: props.healthCheckGracePeriodSeconds ?? 600,
      defaultInstanceWarmup: warmupSeconds,
      initialLifecycleHook: hooks,
      // New nodes stay out of service until their launch hook completes; Terraform's default
      // 10-minute capacity wait is shorter than a first boot that waits for the migration.
      waitForCapacityTimeout: `${Math.ceil((LAUNCH_HOOK_SECONDS + 300) / 60)}m`,
      // Terraform's default (10 min) is shorter than the drain hook's heartbeat: a destroy
      // would time out while a worker drains. Allow the whole heartbeat plus 15 minutes
      // (`npm run destroy` also deletes the hook first, so nodes terminate at once).
      timeouts:
        drainTimeout !== undefined
          ? {
              delete: `${Math.ceil((drainKnown ? drainTimeout : MAX_HOOK_HEARTBEAT_SECONDS) / 60) + 15}m`,
            }
          : undefined,
      // A new launch template version (user-data = settings revision, AMI, type) rolls
      // the group: launch new, wait healthy + warm-up, then terminate old.
      // Health-gated: a new node counts only once its launch hook is CONTINUE (role
      // healthy); a group of several pauses at half for one warm-up, so the alarms see the
      // first half in service before the rest goes; an alarm going off rolls it all back.
      instanceRefresh: {
        strategy: "Rolling",
        preferences: {
          minHealthyPercentage: props.minHealthyPercentage ?? 100,
          maxHealthyPercentage: 200,
          instanceWarmup: String(warmupSeconds),
          skipMatching: true,
          // Busy workers are protected from scale-in; a refresh still replaces them and
          // their termination hook lets running tasks finish.
          ...(drainTimeout !== undefined ? { scaleInProtectedInstances: "Refresh" } : {}),
          ...(props.maxSize > 1
            ? { checkpointPercentages: [50, 100], checkpointDelay: String(warmupSeconds) }
            : {}),
          autoRollback: true,
          ...(rollbackAlarms.length ? { alarmSpecification: { alarms: [...rollbackAlarms] } } : {}),
        },
      },
      enabledMetrics: [
        "GroupDesiredCapacity",
        "GroupInServiceInstances",
        "GroupPendingInstances",
        "GroupTerminatingInstances",
        "GroupTotalInstances",
      ],
      tag: Object.keys(tags)
        .sort()
        .map((key) => ({ key, value: tags[key], propagateAtLaunch: true })),
    });
    // initial_lifecycle_hook takes effect only when Terraform creates the group; these put
    // the same hooks on a group deployed before them (PutLifecycleHook upserts).
    // The same for the drain hook, so a new bake's stop timeout reaches a running group
    // (`npm run destroy` deletes it ahead of Terraform, which then finds it gone).
    for (const hook of hooks) {
      new AutoscalingLifecycleHook(this, hook.name === LAUNCH_HOOK_NAME ? "launch-hook" : "drain-hook", {
        ...hook,
        autoscalingGroupName: this.autoScalingGroup.name,
      });
    }
  }
}

/**
 * The worker drain hook's timeout from the image: its `WorkerStopTimeout` tag plus
 * {@link DRAIN_MARGIN_SECONDS}, at most {@link MAX_HOOK_HEARTBEAT_SECONDS} (a Terraform number).
 */
export function drainFromImage(image: GoldenImage): number {
  return Token.asNumber(
    Fn.min([Fn.sum([image.workerStopTimeoutSeconds, DRAIN_MARGIN_SECONDS]), MAX_HOOK_HEARTBEAT_SECONDS]),
  );
}

/** What the role layout needs from the load balancers. */
export interface NodeTargetGroups {
  /** Target groups of the api-server (or standalone) node. */
  readonly apiServerTargetGroups: readonly HasArn[];
}

/** What one role's nodes run on. */
export interface NodeSpec {
  /** EC2 instance type. */
  readonly instanceType: string;
  /** Security groups of the instances. */
  readonly securityGroups: readonly HasId[];
}

/** The Celery worker fleet. */
export interface WorkerSpec extends NodeSpec {
  /** Fewest workers; 0 lets the fleet stop when no task is queued or running. */
  readonly min: number;
  /** Most workers; above `min` the queue-depth policies scale between the two (worker-scaling.ts). */
  readonly max: number;
  /**
   * Drain time on scale-in / refresh (termination hook timeout), seconds.
   * @default the AMI's `WorkerStopTimeout` tag (the worker's TimeoutStopSec) plus 5
   *   minutes, at most 7200 s, so systemd's warm shutdown finishes inside the hook
   */
  readonly drainSeconds?: number;
  /**
   * Run the workers on Spot (draining on rebalance recommendations and interruption notices).
   * @default false
   */
  readonly spot?: boolean;
}

/** Whether the scheduler a group runs may overlap with another one. */
export interface SchedulerOverlap {
  /**
   * `[scheduler] use_row_level_locking`. Must be true: an instance refresh starts the new
   * scheduler before the old one stops, and two schedulers without row locks can both
   * schedule the same task instance.
   */
  readonly useRowLevelLocking: boolean;
}

/** LocalExecutor: one node runs every component, tasks included. */
export interface StandaloneLayout {
  /** Selects this layout. */
  readonly executor: "LocalExecutor";
  /** The node; it needs both the api-server's and the scheduler's network paths. */
  readonly standalone: NodeSpec & SchedulerOverlap;
}

/** CeleryExecutor: an api-server, schedulers and a worker fleet. */
export interface CeleryLayout {
  /** Selects this layout. */
  readonly executor: "CeleryExecutor";
  /** The api-server: `count` nodes, one more while a refresh replaces one. */
  readonly apiServer: NodeSpec & {
    /** API servers in service (config durability.apiServerCount: 2 outside dev). */
    readonly count: number;
  };
  /** Schedulers; each runs scheduler, dag-processor and triggerer. */
  readonly scheduler: NodeSpec &
    SchedulerOverlap & {
      /** Schedulers in service (one more while a refresh replaces one). */
      readonly count: number;
    };
  /** Celery workers. */
  readonly worker: WorkerSpec;
}

/** Properties of {@link AirflowNodeGroups}. */
export interface AirflowNodeGroupsProps {
  /** `<namePrefix>-<env>`: groups are `<resourcePrefix>-<role>`. */
  readonly resourcePrefix: string;
  /** `/<namePrefix>/<env>` (user-data pointer). */
  readonly parameterPrefix: string;
  /** `<namePrefix>/<env>` (user-data pointer). */
  readonly secretPrefix: string;
  /** AWS region (user-data pointer). */
  readonly region: string;
  /**
   * Extra tags on every instance and volume.
   * @default {}
   */
  readonly tags?: Readonly<Record<string, string>>;
  /** Which golden AMI every group boots. */
  readonly image: GoldenImageProps;
  /** The roles and their sizes; the executor decides which roles exist. */
  readonly layout: StandaloneLayout | CeleryLayout;
  /** Private subnets. */
  readonly subnets: readonly HasId[];
  /** Instance profile per node role of the layout: each group runs with its own role's. */
  readonly instanceProfiles: Readonly<Partial<Record<NodeRole, HasArn>>>;
  /** Load balancer target groups. */
  readonly loadBalancers: NodeTargetGroups;
  /** AIRFLOW_SETTINGS_REVISION. */
  readonly settingsRevision: string;
  /**
   * Alarms (by name) on the api-server's (or standalone node's) load balancer targets that
   * roll its instance refresh back, besides every group's own in-service alarm.
   * @default []
   */
  readonly apiServerRollbackAlarmNames?: readonly string[];
  /**
   * EC2 detailed monitoring of every group (the environment policy's).
   * @default true
   */
  readonly detailedMonitoring?: boolean;
  /**
   * Root volume of every group, GiB (the environment's default size).
   * @default 30
   */
  readonly rootVolumeGb?: number;
}

/**
 * The node groups of the layout: CeleryExecutor -> api-server (`apiServer.count`, one
 * more during a refresh), schedulers (`scheduler.count`; each runs scheduler, dag-processor, triggerer)
 * and workers (`worker.min`..`worker.max`); LocalExecutor -> one standalone node.
 */
export class AirflowNodeGroups extends Construct {
  /** The golden AMI lookup shared by all groups. */
  public readonly image: GoldenImage;
  /** Node group per role present in this layout. */
  public readonly groups: Readonly<Partial<Record<NodeRole, NodeGroup>>>;

  public constructor(scope: Construct, id: string, props: AirflowNodeGroupsProps) {
    super(scope, id);
    const { layout } = props;
    if (layout.executor === "CeleryExecutor") {
      assertIntIn(this, "layout.apiServer.count", layout.apiServer.count, 1, 10);
    }
    const scheduling = layout.executor === "CeleryExecutor" ? layout.scheduler : layout.standalone;
    const schedulingField = layout.executor === "CeleryExecutor" ? "scheduler" : "standalone";
    if (scheduling.useRowLevelLocking !== true) {
      throw new PropError(
        this,
        `layout.${schedulingField}.useRowLevelLocking`,
        scheduling.useRowLevelLocking,
        "true (an instance refresh runs the new scheduler next to the old one)",
      );
    }
    this.image = new GoldenImage(this, "image", props.image);
    const common = {
      resourcePrefix: props.resourcePrefix,
      parameterPrefix: props.parameterPrefix,
      secretPrefix: props.secretPrefix,
      region: props.region,
      tags: props.tags,
      image: this.image,
      subnets: props.subnets,
      settingsRevision: props.settingsRevision,
      detailedMonitoring: props.detailedMonitoring,
      rootVolumeGb: props.rootVolumeGb,
    };
    const lbAlarms = props.apiServerRollbackAlarmNames ?? [];
    const rollbackAlarmNames = (role: NodeRole, extra: readonly string[] = []): string[] => [
      groupInServiceAlarmName(props.resourcePrefix, role),
      ...extra,
    ];
    const profile = (role: NodeRole): HasArn => {
      const p = props.instanceProfiles[role];
      if (p === undefined)
        throw new PropError(this, `instanceProfiles.${role}`, undefined, "an instance profile");
      return p;
    };
    const groups: Partial<Record<NodeRole, NodeGroup>> = {};
    if (layout.executor === "LocalExecutor") {
      groups.standalone = new NodeGroup(this, "standalone", {
        ...common,
        role: "standalone",
        instanceProfile: profile("standalone"),
        securityGroups: layout.standalone.securityGroups,
        instanceType: layout.standalone.instanceType,
        minSize: 1,
        maxSize: 1,
        desiredCapacity: 1,
        targetGroups: props.loadBalancers.apiServerTargetGroups,
        // One node: refresh must launch the new one before the old one goes.
        minHealthyPercentage: 100,
        rollbackAlarmNames: rollbackAlarmNames("standalone", lbAlarms),
      });
    } else {
      groups["api-server"] = new NodeGroup(this, "api-server", {
        ...common,
        role: "api-server",
        instanceProfile: profile("api-server"),
        securityGroups: layout.apiServer.securityGroups,
        instanceType: layout.apiServer.instanceType,
        minSize: layout.apiServer.count,
        maxSize: layout.apiServer.count + 1,
        desiredCapacity: layout.apiServer.count,
        targetGroups: props.loadBalancers.apiServerTargetGroups,
        rollbackAlarmNames: rollbackAlarmNames("api-server", lbAlarms),
      });
      groups.scheduler = new NodeGroup(this, "scheduler", {
        ...common,
        role: "scheduler",
        instanceProfile: profile("scheduler"),
        securityGroups: layout.scheduler.securityGroups,
        instanceType: layout.scheduler.instanceType,
        minSize: layout.scheduler.count,
        maxSize: layout.scheduler.count + 1,
        desiredCapacity: layout.scheduler.count,
        rollbackAlarmNames: rollbackAlarmNames("scheduler"),
      });
      const worker = new NodeGroup(this, "worker", {
        ...common,
        role: "worker",
        instanceProfile: profile("worker"),
        securityGroups: layout.worker.securityGroups,
        instanceType: layout.worker.instanceType,
        minSize: layout.worker.min,
        maxSize: layout.worker.max,
        // No desiredCapacity: the scaling policies own it between min and max.
        drainTimeoutSeconds: layout.worker.drainSeconds ?? drainFromImage(this.image),
        spot: layout.worker.spot ?? false,
        rollbackAlarmNames: rollbackAlarmNames("worker"),
      });
      groups.worker = worker;
      if (layout.worker.max > layout.worker.min) {
        new WorkerScaling(this, "worker-scaling", {
          resourcePrefix: props.resourcePrefix,
          group: worker.autoScalingGroup,
          maxSize: layout.worker.max,
          scaleFromZero: layout.worker.min === 0,
        });
      }
    }
    this.groups = groups;
  }
}
