/**
 * The VPC: public subnets hold only the public load balancer and the NAT gateways;
 * every instance, RDS, ElastiCache and EFS lives in the private subnets. S3 traffic
 * (logs, DAG sync, data) takes a free gateway endpoint instead of the NAT, and VPC flow
 * logs go to CloudWatch for incident forensics.
 */
import { Construct } from "constructs";
import { Token, propertyAccess } from "cdktf";
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group";
import { DataAwsAvailabilityZones } from "@cdktf/provider-aws/lib/data-aws-availability-zones";
import { DataAwsIamPolicyDocument } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { DefaultSecurityGroup } from "@cdktf/provider-aws/lib/default-security-group";
import { Eip } from "@cdktf/provider-aws/lib/eip";
import { FlowLog } from "@cdktf/provider-aws/lib/flow-log";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy";
import { InternetGateway } from "@cdktf/provider-aws/lib/internet-gateway";
import { NatGateway } from "@cdktf/provider-aws/lib/nat-gateway";
import { Route } from "@cdktf/provider-aws/lib/route";
import { RouteTable } from "@cdktf/provider-aws/lib/route-table";
import { RouteTableAssociation } from "@cdktf/provider-aws/lib/route-table-association";
import { Subnet } from "@cdktf/provider-aws/lib/subnet";
import { Vpc } from "@cdktf/provider-aws/lib/vpc";
import { VpcEndpoint } from "@cdktf/provider-aws/lib/vpc-endpoint";
import { skipShortLogRetention } from "./checkov";
import { EMR_MANAGED_TAG, PropError, iamName } from "./contract";
import { NatInstance } from "./nat-instance";

/** Props of {@link Network}. */
export interface NetworkProps {
  /** `<namePrefix>-<env>`, prefixed to Name tags. */
  readonly resourcePrefix: string;
  /** Region, for the S3 gateway endpoint service name and the flow-log role's (global) IAM name. */
  readonly region: string;
  /** VPC CIDR, /16 to /24. */
  readonly cidr: string;
  /** Availability zones to use (2..6). */
  readonly azCount: number;
  /**
   * Pinned AZ names (length must equal `azCount`).
   * @default undefined - the first `azCount` available zones of the region
   */
  readonly availabilityZones?: readonly string[];
  /**
   * One NAT gateway per AZ (no cross-AZ dependency) instead of a single shared one.
   * @default true
   */
  readonly natPerAz?: boolean;
  /**
   * One NAT instance (modules/nat-instance.ts) instead of NAT gateways; it implies a single
   * NAT, so `natPerAz` must not be true.
   * @default false
   */
  readonly natInstance?: boolean;
  /** Retention of the flow-log group, in days (a CloudWatch-allowed value). */
  readonly flowLogRetentionDays: number;
  /**
   * KMS key ARN for the flow-log group.
   * @default undefined - the policy aspect fills in the cluster key
   */
  readonly kmsKeyArn?: string;
}

/**
 * `cidrsubnet` done at synth time, so subnet CIDRs are literal, reviewable and testable.
 * @param cidr an IPv4 CIDR block
 * @param newBits bits added to the prefix
 * @param netNum index of the sub-block
 */
export function subnetCidr(cidr: string, newBits: number, netNum: number): string {
  const [ip, bitsText] = cidr.split("/");
  const bits = Number(bitsText);
  const prefix = bits + newBits;
  if (prefix > 28) {
    throw new PropError(
      "subnetCidr",
      "newBits",
      newBits,
      `at most ${28 - bits} for ${cidr} (AWS subnets are /28 or larger)`,
    );
  }
  if (!Number.isInteger(netNum) || netNum < 0 || netNum >= 2 ** newBits) {
    throw new PropError("subnetCidr", "netNum", netNum, `an integer from 0 to ${2 ** newBits - 1}`);
  }
  const base = ip.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  const network = base - (base % 2 ** (32 - bits));
  const addr = network + netNum * 2 ** (32 - prefix);
  const octets = [24, 16, 8, 0].map((shift) => Math.floor(addr / 2 ** shift) % 256);
  return `${octets.join(".")}/${prefix}`;
}

/**
 * Address plan: the VPC is cut into 16 equal blocks (4 more prefix bits, so a /16
 * gives /20 subnets and a /24 still gives the AWS-minimum /28). Public subnets take
 * blocks 0..azCount-1 and private subnets blocks 8..8+azCount-1, leaving room to grow.
 */
const SUBNET_BITS = 4;
const PRIVATE_OFFSET = 8;

/** VPC, subnets, NAT, S3 gateway endpoint and flow logs. */
export class Network extends Construct {
  /** The VPC. */
  public readonly vpc: Vpc;
  /** Public subnets, one per AZ: load balancers and NAT gateways only. */
  public readonly publicSubnets: readonly Subnet[];
  /** Private subnets, one per AZ: every instance, RDS, ElastiCache, EFS, EMR. */
  public readonly privateSubnets: readonly Subnet[];
  /** `publicSubnets` ids. */
  public readonly publicSubnetIds: string[];
  /** `privateSubnets` ids. */
  public readonly privateSubnetIds: string[];
  /** AZ names (tokens), index-aligned with the subnets. */
  public readonly availabilityZones: readonly string[];
  /**
   * The public subnets' default route to the internet gateway. An internet-facing load
   * balancer depends on it: without it the ALB is created but unreachable, and its
   * subnets' gateway may still be attaching.
   */
  public readonly internetRoute: Route;
  /** Route tables of the private subnets (one per NAT). */
  public readonly privateRouteTables: readonly RouteTable[];
  /** The S3 gateway endpoint (for bucket policies that pin `aws:SourceVpce`). */
  public readonly s3Endpoint: VpcEndpoint;
  /** Flow-log group. */
  public readonly flowLogGroup: CloudwatchLogGroup;

  public constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    if (!Number.isInteger(props.azCount) || props.azCount < 2 || props.azCount > 6) {
      throw new PropError(this, "azCount", props.azCount, "an integer from 2 to 6");
    }
    const bits = Number(props.cidr.split("/")[1]);
    if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(props.cidr) || bits < 16 || bits > 24) {
      throw new PropError(this, "cidr", props.cidr, "an IPv4 CIDR block from /16 to /24");
    }
    const p = props.resourcePrefix;
    const natInstance = props.natInstance ?? false;
    if (natInstance && props.natPerAz === true) {
      throw new PropError(this, "natPerAz", true, "false or unset with natInstance (one NAT instance)");
    }
    const natPerAz = natInstance ? false : (props.natPerAz ?? true);

    if (props.availabilityZones && props.availabilityZones.length !== props.azCount) {
      throw new PropError(
        this,
        "availabilityZones",
        props.availabilityZones,
        `${props.azCount} AZ names (azCount)`,
      );
    }
    if (props.availabilityZones) {
      this.availabilityZones = [...props.availabilityZones];
    } else {
      // Allow-list zone names <region>a..f: a zone AWS adds later (or a Local Zone)
      // can never shift the index-based subnet placement. No state filter either, so an
      // impaired zone does not renumber the others.
      const azs = new DataAwsAvailabilityZones(this, "azs", {
        filter: [{ name: "zone-name", values: [..."abcdef"].map((l) => `${props.region}${l}`) }],
      });
      // names[i], not element(names, i): element() wraps around, which would silently put
      // two subnets in one AZ if the region has fewer zones than azCount.
      this.availabilityZones = Array.from({ length: props.azCount }, (_, i) =>
        Token.asString(propertyAccess(azs.names, [i])),
      );
    }

    this.vpc = new Vpc(this, "vpc", {
      cidrBlock: props.cidr,
      enableDnsHostnames: true, // EFS mount by DNS name and RDS endpoints need both
      enableDnsSupport: true,
      // EMR's managed v2 service policy only creates ENIs and security groups in a VPC and
      // subnets carrying this tag; without it DAG_1's cluster fails to launch.
      tags: { Name: `${p}-vpc`, [EMR_MANAGED_TAG.key]: EMR_MANAGED_TAG.value },
    });

    // Deny-all default security group: nothing may fall back to it (CIS 5.4).
    new DefaultSecurityGroup(this, "default-sg", {
      vpcId: this.vpc.id,
      tags: { Name: `${p}-default-unused` },
    });

    const igw = new InternetGateway(this, "igw", { vpcId: this.vpc.id, tags: { Name: `${p}-igw` } });

    this.publicSubnets = this.availabilityZones.map(
      (az, i) =>
        new Subnet(this, `public-${i}`, {
          vpcId: this.vpc.id,
          availabilityZone: az,
          cidrBlock: subnetCidr(props.cidr, SUBNET_BITS, i),
          // Nothing here needs an automatic public IP: the ALB and NAT bring their own.
          mapPublicIpOnLaunch: false,
          tags: { Name: `${p}-public-${i}`, Tier: "public" },
        }),
    );
    const privateCidrs = this.availabilityZones.map((_, i) =>
      subnetCidr(props.cidr, SUBNET_BITS, PRIVATE_OFFSET + i),
    );
    this.privateSubnets = this.availabilityZones.map(
      (az, i) =>
        new Subnet(this, `private-${i}`, {
          vpcId: this.vpc.id,
          availabilityZone: az,
          cidrBlock: privateCidrs[i],
          mapPublicIpOnLaunch: false,
          tags: { Name: `${p}-private-${i}`, Tier: "private", [EMR_MANAGED_TAG.key]: EMR_MANAGED_TAG.value },
        }),
    );
    this.publicSubnetIds = this.publicSubnets.map((s) => s.id);
    this.privateSubnetIds = this.privateSubnets.map((s) => s.id);

    const publicRt = new RouteTable(this, "public-rt", { vpcId: this.vpc.id, tags: { Name: `${p}-public` } });
    this.internetRoute = new Route(this, "public-default", {
      routeTableId: publicRt.id,
      destinationCidrBlock: "0.0.0.0/0",
      gatewayId: igw.id,
    });
    const publicAssociations = this.publicSubnets.map(
      (s, i) =>
        new RouteTableAssociation(this, `public-rta-${i}`, { subnetId: s.id, routeTableId: publicRt.id }),
    );

    // NAT: outbound-only internet for AWS APIs from private nodes. One per AZ keeps an
    // AZ outage from cutting the others off; dev saves the cost with a single one.
    // A NAT instance trades that for a fraction of the price where the durability policy allows.
    const natCount = natPerAz ? props.azCount : 1;
    const natTargets: { readonly natGatewayId?: string; readonly networkInterfaceId?: string }[] = natInstance
      ? [
          {
            networkInterfaceId: new NatInstance(this, "nat-instance", {
              resourcePrefix: p,
              vpc: this.vpc,
              subnet: this.publicSubnets[0],
              internetPath: [this.internetRoute, publicAssociations[0]],
              // Literal blocks (as the subnets were cut), so the rules are reviewable in the plan.
              sourceCidrs: privateCidrs,
            }).networkInterfaceId,
          },
        ]
      : Array.from({ length: natCount }, (_, i) => {
          const eip = new Eip(this, `nat-eip-${i}`, { domain: "vpc", tags: { Name: `${p}-nat-${i}` } });
          const nat = new NatGateway(this, `nat-${i}`, {
            allocationId: eip.allocationId,
            subnetId: this.publicSubnets[i].id,
            tags: { Name: `${p}-nat-${i}` },
            dependsOn: [igw],
          });
          return { natGatewayId: nat.id };
        });
    this.privateRouteTables = natTargets.map((target, i) => {
      const rt = new RouteTable(this, `private-rt-${i}`, {
        vpcId: this.vpc.id,
        tags: { Name: `${p}-private-${i}` },
      });
      new Route(this, `private-default-${i}`, {
        routeTableId: rt.id,
        destinationCidrBlock: "0.0.0.0/0",
        ...target,
      });
      return rt;
    });
    this.privateSubnets.forEach(
      (s, i) =>
        new RouteTableAssociation(this, `private-rta-${i}`, {
          subnetId: s.id,
          routeTableId: this.privateRouteTables[natPerAz ? i : 0].id,
        }),
    );

    this.s3Endpoint = new VpcEndpoint(this, "s3-endpoint", {
      vpcId: this.vpc.id,
      serviceName: `com.amazonaws.${props.region}.s3`,
      vpcEndpointType: "Gateway",
      routeTableIds: this.privateRouteTables.map((rt) => rt.id),
      tags: { Name: `${p}-s3` },
    });

    // Flow logs: every accepted and rejected flow, for forensics and SG debugging.
    this.flowLogGroup = new CloudwatchLogGroup(this, "flow-log-group", {
      name: `/${p}/vpc-flow-logs`,
      retentionInDays: props.flowLogRetentionDays,
      kmsKeyId: props.kmsKeyArn,
    });
    skipShortLogRetention(this.flowLogGroup, props.flowLogRetentionDays);
    const assume = new DataAwsIamPolicyDocument(this, "flow-log-assume", {
      statement: [
        {
          actions: ["sts:AssumeRole"],
          principals: [{ type: "Service", identifiers: ["vpc-flow-logs.amazonaws.com"] }],
        },
      ],
    });
    const role = new IamRole(this, "flow-log-role", {
      name: iamName(p, props.region, "vpc-flow-logs"),
      assumeRolePolicy: assume.json,
    });
    const write = new DataAwsIamPolicyDocument(this, "flow-log-write", {
      statement: [
        {
          actions: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
          resources: [this.flowLogGroup.arn, `${this.flowLogGroup.arn}:*`],
        },
      ],
    });
    new IamRolePolicy(this, "flow-log-policy", { role: role.id, policy: write.json });
    new FlowLog(this, "flow-log", {
      vpcId: this.vpc.id,
      trafficType: "ALL",
      logDestinationType: "cloud-watch-logs",
      logDestination: this.flowLogGroup.arn,
      iamRoleArn: role.arn,
      maxAggregationInterval: 60,
      tags: { Name: `${p}-vpc` },
    });
  }
}
