/**
 * Load balancers: the public ALB for the UI/REST API and, with CeleryExecutor, an
 * internal ALB that carries the Execution API (workers -> api-server) and Flower. Flower
 * is never reachable from the internet: it has a listener on the internal ALB only.
 * A cluster whose UI is reached only by SSM port forwarding to an api-server node needs
 * no public ALB; the internal one then alone health-checks the api-server.
 */
import { Lb } from "@cdktf/provider-aws/lib/lb";
import { LbListener } from "@cdktf/provider-aws/lib/lb-listener";
import { LbTargetGroup, LbTargetGroupHealthCheck } from "@cdktf/provider-aws/lib/lb-target-group";
import type { ITerraformDependable } from "cdktf";
import { Construct } from "constructs";
import { skipCheckovAll } from "./checkov";
import { HasBucket, HasId, PORTS, PropError, assertKeyPrefix } from "./contract";

/** Health check path of the Airflow 3 api-server. */
export const API_HEALTH_PATH = "/api/v2/monitor/health";

/** TLS 1.3 + 1.2 only, forward secrecy (the current ELB recommendation). */
export const TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/** ALB idle timeout: long enough for the UI's log streaming requests. */
const IDLE_TIMEOUT_SECONDS = 120;

/** Target deregistration delay: in-flight UI requests are short, and a short drain keeps instance refresh quick. */
const DEREGISTRATION_DELAY_SECONDS = 30;

/** Properties of {@link ClusterLoadBalancers}. */
export interface ClusterLoadBalancersProps {
  /** `<namePrefix>-<env>`: prefix of the ALB and target group names (cut to 32 characters). */
  readonly resourcePrefix: string;
  /** Environment name; the checkov excuse for disabled deletion protection quotes it. */
  readonly env: string;
  /** ALB deletion protection (the environment's durability policy). */
  readonly deletionProtection: boolean;
  /** The VPC (target groups live in it). */
  readonly vpc: HasId;
  /** Public subnets, one per AZ: the internet-facing ALB. */
  readonly publicSubnets: readonly HasId[];
  /**
   * Whether the internet-facing ALB exists. Without it users reach the UI by SSM port
   * forwarding to an api-server node; it needs `internal`, whose Execution API target
   * group then carries the api-server's ELB health check.
   * @default true
   */
  readonly publicLoadBalancer?: boolean;
  /**
   * Security group of the public ALB (ingress only from the configured UI CIDRs).
   * @default none - required with the public ALB
   */
  readonly publicSecurityGroup?: HasId;
  /**
   * The public subnets' route to the internet gateway; the internet-facing ALB is created
   * after it.
   * @default none - no ordering (the caller guarantees the route exists)
   */
  readonly internetRoute?: ITerraformDependable;
  /**
   * ACM certificate of the public listener: HTTPS on 443 and a redirect on 80.
   * @default none - plain HTTP on 80 (checkov skip with reason)
   */
  readonly certificateArn?: string;
  /**
   * DNS name users reach the UI at (a record pointed at the public ALB); the UI URL uses it.
   * @default the public ALB's DNS name
   */
  readonly uiDomainName?: string;
  /**
   * The internal ALB, which carries the Execution API (workers -> api-server) and Flower.
   * Only CeleryExecutor has remote workers, so only it needs one.
   * @default none - no internal ALB; the Execution API URL is the standalone node's localhost
   */
  readonly internal?: {
    /** Security group of the internal ALB (ingress 8080/5555 only from the nodes). */
    readonly securityGroup: HasId;
    /** Private subnets, one per AZ. */
    readonly subnets: readonly HasId[];
  };
  /**
   * Where ALB access logs go. The bucket must use SSE-S3 and let the regional ELB log
   * delivery principal write under the prefix.
   * @default none - access logging off (checkov skip with reason)
   */
  readonly accessLogs?: {
    readonly bucket: HasBucket;
    readonly prefix: string;
    /**
     * The bucket policy granting ELB log delivery. Both ALBs are created after it: ELB
     * test-writes to the bucket when logging is switched on and fails with Access Denied
     * while the grant is missing.
     * @default none - no ordering (the caller guarantees the policy exists)
     */
    readonly policy?: ITerraformDependable;
  };
}

/** Public ALB (+ internal ALB with CeleryExecutor) and the target groups nodes join. */
export class ClusterLoadBalancers extends Construct {
  /** Internet-facing ALB in the public subnets; undefined without `publicLoadBalancer`. */
  public readonly publicLb?: Lb;
  /** Internal ALB (CeleryExecutor only). */
  public readonly internalLb?: Lb;
  /** api-server :8080 behind the public ALB (UI, REST API); undefined without it. */
  public readonly uiTargetGroup?: LbTargetGroup;
  /** api-server :8080 behind the internal ALB (Execution API for workers). */
  public readonly executionApiTargetGroup?: LbTargetGroup;
  /** Flower :5555 behind the internal ALB. */
  public readonly flowerTargetGroup?: LbTargetGroup;
  /** Public URL of the UI (`https://` with a certificate, else `http://`); undefined without the public ALB. */
  public readonly uiUrl?: string;
  /** Execution API URL reachable by workers (`http://localhost:8080/execution/` when standalone). */
  public readonly executionApiUrl: string;
  /** Flower URL on the internal ALB; undefined with LocalExecutor. */
  public readonly flowerUrl?: string;
  /** Every target group the api-server (or standalone) node group registers with. */
  public readonly apiServerTargetGroups: readonly LbTargetGroup[];
  /** Listeners of the public ALB (80, plus 443 with a certificate); empty without it. */
  public readonly publicListeners: readonly LbListener[];
  /** Listeners of the internal ALB (Execution API, Flower); empty with LocalExecutor. */
  public readonly internalListeners: readonly LbListener[];

  public constructor(scope: Construct, id: string, props: ClusterLoadBalancersProps) {
    super(scope, id);
    if (!/^[A-Za-z0-9-]+$/.test(props.resourcePrefix)) {
      throw new PropError(
        this,
        "resourcePrefix",
        props.resourcePrefix,
        "letters, digits and '-' (ALB names)",
      );
    }
    const withPublic = props.publicLoadBalancer ?? true;
    if (!withPublic && !props.internal) {
      throw new PropError(
        this,
        "publicLoadBalancer",
        false,
        "true without `internal` (the api-server needs a load balancer to health-check it)",
      );
    }
    if (withPublic && !props.publicSecurityGroup) {
      throw new PropError(this, "publicSecurityGroup", undefined, "a security group with the public ALB");
    }
    if (withPublic && props.publicSubnets.length < 2) {
      throw new PropError(
        this,
        "publicSubnets",
        props.publicSubnets.length,
        "2 or more (an ALB spans two AZs)",
      );
    }
    if (props.internal && props.internal.subnets.length < 2) {
      throw new PropError(
        this,
        "internal.subnets",
        props.internal.subnets.length,
        "2 or more (an ALB spans two AZs)",
      );
    }
    if (props.accessLogs) assertKeyPrefix(this, "accessLogs.prefix", props.accessLogs.prefix);
    const apiPort = PORTS.apiServer;
    const flowerPort = PORTS.flower;
    // ALB and target group names: at most 32 characters.
    const lbName = (suffix: string): string => `${props.resourcePrefix}-${suffix}`.slice(0, 32);

    const lbSkips = (internal: boolean): Record<string, string> => {
      const s: Record<string, string> = {};
      if (!props.deletionProtection) {
        s.CKV_AWS_150 = `deletionProtection is off for env "${props.env}" so destroy works; it is on by default outside dev`;
      }
      if (!props.accessLogs) {
        s.CKV_AWS_91 =
          "Access logging is wired only when the log bucket grants ELB log delivery (SSE-S3); see accessLogs prop";
      }
      if (!internal) {
        s.CKV2_AWS_28 =
          "The security group admits only config.uiAllowedCidrs and the UI requires FAB login; a WAF web ACL " +
          "(~$10/month plus per-request) is left to accounts that expose the UI broadly";
      }
      return s;
    };
    const makeLb = (lbId: string, internal: boolean, subnets: readonly HasId[], sg: HasId): Lb => {
      const after = [props.accessLogs?.policy, internal ? undefined : props.internetRoute].filter(
        (d): d is ITerraformDependable => d !== undefined,
      );
      const lb = new Lb(this, lbId, {
        name: lbName(internal ? "int" : "ui"),
        internal,
        loadBalancerType: "application",
        subnets: subnets.map((s) => s.id),
        securityGroups: [sg.id],
        dropInvalidHeaderFields: true,
        desyncMitigationMode: "defensive",
        enableDeletionProtection: props.deletionProtection,
        idleTimeout: IDLE_TIMEOUT_SECONDS,
        accessLogs: props.accessLogs
          ? {
              bucket: props.accessLogs.bucket.bucket,
              prefix: `${props.accessLogs.prefix}/${internal ? "internal" : "public"}`,
              enabled: true,
            }
          : undefined,
        dependsOn: after.length > 0 ? after : undefined,
      });
      skipCheckovAll(lb, lbSkips(internal));
      return lb;
    };

    const health = (path: string, matcher: string): LbTargetGroupHealthCheck => ({
      enabled: true,
      path,
      protocol: "HTTP",
      port: "traffic-port",
      matcher,
      interval: 15,
      timeout: 5,
      healthyThreshold: 2,
      unhealthyThreshold: 3,
    });
    const tgSkip = {
      CKV_AWS_378:
        "Plain HTTP from listener to target: the ALB is internal or has no certificate, targets are " +
        "private-subnet instances reachable only from the ALB's security group",
    };
    // behindHttp: the target group's listener speaks HTTP (checkov flags the pair).
    const makeTg = (
      tgId: string,
      suffix: string,
      port: number,
      path: string,
      behindHttp: boolean,
      matcher = "200",
    ): LbTargetGroup => {
      const tg = new LbTargetGroup(this, tgId, {
        name: lbName(suffix),
        port,
        protocol: "HTTP",
        targetType: "instance",
        vpcId: props.vpc.id,
        deregistrationDelay: String(DEREGISTRATION_DELAY_SECONDS),
        healthCheck: health(path, matcher),
      });
      if (behindHttp) skipCheckovAll(tg, tgSkip);
      return tg;
    };

    // --- public ALB ------------------------------------------------------------------
    const publicSg = withPublic ? props.publicSecurityGroup : undefined;
    if (publicSg) {
      this.publicLb = makeLb("public", false, props.publicSubnets, publicSg);
      this.uiTargetGroup = makeTg("ui-tg", "ui", apiPort, API_HEALTH_PATH, !props.certificateArn);
      const forwardUi = [{ type: "forward", targetGroupArn: this.uiTargetGroup.arn }];
      if (props.certificateArn) {
        const https = new LbListener(this, "https", {
          loadBalancerArn: this.publicLb.arn,
          port: 443,
          protocol: "HTTPS",
          sslPolicy: TLS_POLICY,
          certificateArn: props.certificateArn,
          defaultAction: forwardUi,
        });
        const redirect = new LbListener(this, "http-redirect", {
          loadBalancerArn: this.publicLb.arn,
          port: 80,
          protocol: "HTTP",
          defaultAction: [
            { type: "redirect", redirect: { port: "443", protocol: "HTTPS", statusCode: "HTTP_301" } },
          ],
        });
        this.publicListeners = [https, redirect];
        this.uiUrl = `https://${props.uiDomainName ?? this.publicLb.dnsName}`;
      } else {
        const http = new LbListener(this, "http", {
          loadBalancerArn: this.publicLb.arn,
          port: 80,
          protocol: "HTTP",
          defaultAction: forwardUi,
        });
        const why =
          "No config.certificateArn: plain HTTP is the dev fallback, restricted to config.uiAllowedCidrs; " +
          "set certificateArn and this listener becomes an HTTPS redirect";
        skipCheckovAll(http, { CKV_AWS_2: why, CKV_AWS_103: why });
        skipCheckovAll(this.publicLb, { CKV2_AWS_20: why });
        this.publicListeners = [http];
        this.uiUrl = `http://${props.uiDomainName ?? this.publicLb.dnsName}`;
      }
    } else {
      this.publicListeners = [];
    }

    // --- internal ALB (Execution API + Flower) -----------------------------------------
    if (props.internal) {
      const internalLb = makeLb("internal", true, props.internal.subnets, props.internal.securityGroup);
      this.internalLb = internalLb;
      this.executionApiTargetGroup = makeTg("execution-api-tg", "exec", apiPort, API_HEALTH_PATH, true);
      // The api-server group uses ELB health, so every target group it joins can get its
      // node replaced. Flower is an auxiliary UI: any HTTP answer (200, or 401 when basic
      // auth guards /healthcheck) proves the process is up; only silence counts as down.
      this.flowerTargetGroup = makeTg("flower-tg", "flower", flowerPort, "/healthcheck", true, "200-499");
      const internalWhy =
        "Internal ALB inside the VPC, reachable only from the Airflow nodes' security group; the Execution " +
        "API authenticates every call with a per-task JWT";
      // Same port as the api-server so the security groups speak one port end to end.
      const exec = new LbListener(this, "execution-api", {
        loadBalancerArn: internalLb.arn,
        port: apiPort,
        protocol: "HTTP",
        defaultAction: [{ type: "forward", targetGroupArn: this.executionApiTargetGroup.arn }],
      });
      const flower = new LbListener(this, "flower", {
        loadBalancerArn: internalLb.arn,
        port: flowerPort,
        protocol: "HTTP",
        defaultAction: [{ type: "forward", targetGroupArn: this.flowerTargetGroup.arn }],
      });
      const flowerWhy =
        "Flower listens on the internal ALB only, reachable only from the api-server nodes' security group " +
        "(an operator's SSM port-forwarding session); it is never exposed publicly";
      skipCheckovAll(exec, { CKV_AWS_2: internalWhy, CKV_AWS_103: internalWhy });
      skipCheckovAll(flower, { CKV_AWS_2: flowerWhy, CKV_AWS_103: flowerWhy });
      skipCheckovAll(internalLb, { CKV2_AWS_20: internalWhy });
      this.internalListeners = [exec, flower];
      this.executionApiUrl = `http://${internalLb.dnsName}:${apiPort}/execution/`;
      this.flowerUrl = `http://${internalLb.dnsName}:${flowerPort}/`;
      this.apiServerTargetGroups = [
        ...(this.uiTargetGroup ? [this.uiTargetGroup] : []),
        this.executionApiTargetGroup,
        this.flowerTargetGroup,
      ];
    } else {
      // LocalExecutor: tasks run on the standalone node itself, next to its api-server.
      this.executionApiUrl = `http://localhost:${apiPort}/execution/`;
      this.internalListeners = [];
      // The constructor refused a cluster without either ALB.
      this.apiServerTargetGroups = this.uiTargetGroup ? [this.uiTargetGroup] : [];
    }
  }
}
