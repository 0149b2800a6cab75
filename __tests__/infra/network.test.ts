import { Testing } from "cdktf";
import { DataAwsAvailabilityZones } from "@cdktf/provider-aws/lib/data-aws-availability-zones";
import { DefaultSecurityGroup } from "@cdktf/provider-aws/lib/default-security-group";
import { FlowLog } from "@cdktf/provider-aws/lib/flow-log";
import { Vpc } from "@cdktf/provider-aws/lib/vpc";
import { VpcEndpoint } from "@cdktf/provider-aws/lib/vpc-endpoint";
import { Network, NetworkProps, subnetCidr } from "../../modules/network";
import { bareStack, list } from "./helpers";

function synthNetwork(overrides: Partial<NetworkProps> = {}): string {
  const stack = bareStack();
  new Network(stack, "network", {
    resourcePrefix: "airflow-dev",
    region: "us-east-1",
    cidr: "10.40.0.0/16",
    azCount: 2,
    flowLogRetentionDays: 30,
    ...overrides,
  });
  return Testing.synth(stack);
}

describe("subnetCidr", () => {
  it.each([
    ["10.40.0.0/16", 4, 0, "10.40.0.0/20"],
    ["10.40.0.0/16", 4, 8, "10.40.128.0/20"],
    ["10.40.0.0/16", 4, 13, "10.40.208.0/20"],
    ["192.168.10.0/24", 4, 9, "192.168.10.144/28"],
    ["10.40.7.9/16", 4, 1, "10.40.16.0/20"],
  ])(
    "GIVEN %s, %d new bits and net number %d WHEN subnetCidr computes THEN it is %s, as Terraform's cidrsubnet",
    (cidr, bits, num, expected) => {
      expect(subnetCidr(cidr, bits, num)).toBe(expected);
    },
  );

  it("GIVEN a /25 and 4 new bits WHEN subnetCidr computes THEN one line refuses subnets smaller than /28", () => {
    expect(() => subnetCidr("10.0.0.0/25", 4, 0)).toThrow(
      "newBits: got 4; allowed: at most 3 for 10.0.0.0/25",
    );
  });
});

describe("Network", () => {
  it("GIVEN 3 AZs WHEN synthesized THEN public and private subnets are disjoint, one per AZ, none auto-assigning public IPs", () => {
    // WHEN
    const synth = synthNetwork({ azCount: 3 });
    // THEN
    const subnets = list(synth, "aws_subnet");
    const tiers = (tier: string) =>
      subnets.filter((s) => (s.tags as Record<string, string>).Tier === tier).map((s) => s.cidr_block);
    expect(tiers("public")).toEqual(["10.40.0.0/20", "10.40.16.0/20", "10.40.32.0/20"]);
    expect(tiers("private")).toEqual(["10.40.128.0/20", "10.40.144.0/20", "10.40.160.0/20"]);
    expect(subnets.every((s) => s.map_public_ip_on_launch === false)).toBe(true);
  });

  it("GIVEN the network WHEN synthesized THEN the VPC and private subnets carry the tag EMR's managed policy requires", () => {
    // WHEN
    const synth = synthNetwork();
    // THEN
    const emrTag = "for-use-with-amazon-emr-managed-policies";
    expect(synth).toHaveResourceWithProperties(Vpc, { tags: expect.objectContaining({ [emrTag]: "true" }) });
    const tagged = (tier: string) =>
      list(synth, "aws_subnet")
        .filter((s) => (s.tags as Record<string, string>).Tier === tier)
        .map((s) => (s.tags as Record<string, string>)[emrTag]);
    expect(tagged("private")).toEqual(["true", "true"]);
    expect(tagged("public")).toEqual([undefined, undefined]);
  });

  it.each([
    [true, 3, 3],
    [false, 3, 1],
  ])(
    "GIVEN natPerAz=%s and %d AZs WHEN synthesized THEN %d NAT gateway(s) and private route tables",
    (natPerAz, azCount, nats) => {
      const synth = synthNetwork({ natPerAz, azCount });
      expect(list(synth, "aws_nat_gateway")).toHaveLength(nats);
      expect(list(synth, "aws_eip")).toHaveLength(nats);
      const routes = list(synth, "aws_route");
      expect(routes.filter((r) => r.nat_gateway_id)).toHaveLength(nats);
      // Only the public route table points at the internet gateway.
      expect(routes.filter((r) => r.gateway_id)).toHaveLength(1);
    },
  );

  it("GIVEN NAT gateways WHEN synthesized THEN each sits in a public subnet", () => {
    const synth = synthNetwork({ natPerAz: true });
    for (const nat of list(synth, "aws_nat_gateway")) {
      expect(nat.subnet_id).toMatch(/aws_subnet\.network_public-\d/);
    }
  });

  it("GIVEN the network WHEN synthesized THEN S3 goes through a gateway endpoint on the private route tables", () => {
    // WHEN
    const synth = synthNetwork({ natPerAz: true });
    // THEN
    expect(synth).toHaveResourceWithProperties(VpcEndpoint, {
      service_name: "com.amazonaws.us-east-1.s3",
      vpc_endpoint_type: "Gateway",
    });
    const [endpoint] = list(synth, "aws_vpc_endpoint");
    expect(endpoint.route_table_ids).toEqual([
      expect.stringMatching(/^\$\{aws_route_table\.network_private-rt-0_\w+\.id\}$/),
      expect.stringMatching(/^\$\{aws_route_table\.network_private-rt-1_\w+\.id\}$/),
    ]);
  });

  it("GIVEN the network WHEN synthesized THEN all traffic is flow-logged to CloudWatch and the default SG is emptied", () => {
    // WHEN
    const synth = synthNetwork();
    // THEN
    expect(synth).toHaveResourceWithProperties(FlowLog, {
      traffic_type: "ALL",
      log_destination_type: "cloud-watch-logs",
    });
    const [group] = list(synth, "aws_cloudwatch_log_group");
    expect(group.retention_in_days).toBe(30);
    expect(synth).toHaveResource(DefaultSecurityGroup);
    const [defaultSg] = list(synth, "aws_default_security_group");
    expect(defaultSg.ingress).toBeUndefined();
    expect(defaultSg.egress).toBeUndefined();
  });

  it("GIVEN no pinned AZs WHEN synthesized THEN the zone lookup allow-lists <region>a..f by name", () => {
    const synth = synthNetwork();
    expect(synth).toHaveDataSourceWithProperties(DataAwsAvailabilityZones, {
      filter: [
        {
          name: "zone-name",
          values: ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"],
        },
      ],
    });
  });

  it("GIVEN pinned AZs WHEN synthesized THEN subnets use them literally and there is no lookup", () => {
    const synth = synthNetwork({ availabilityZones: ["us-east-1c", "us-east-1d"] });
    expect(synth).not.toHaveDataSource(DataAwsAvailabilityZones);
    expect(list(synth, "aws_subnet").map((s) => s.availability_zone)).toEqual([
      "us-east-1c",
      "us-east-1d",
      "us-east-1c",
      "us-east-1d",
    ]);
  });

  it.each<[string, Partial<NetworkProps>, string]>([
    ["one AZ", { azCount: 1 }, "azCount: got 1; allowed: an integer from 2 to 6"],
    ["a /8", { cidr: "10.0.0.0/8" }, 'cidr: got "10.0.0.0/8"; allowed: an IPv4 CIDR block from /16 to /24'],
    [
      "AZ list of wrong length",
      { availabilityZones: ["us-east-1a"] },
      'availabilityZones: got ["us-east-1a"]; allowed: 2 AZ names',
    ],
  ])("GIVEN %s WHEN constructed THEN it is refused", (_name, props, message) => {
    expect(() => synthNetwork(props)).toThrow(message);
  });
});

describe("NAT instance", () => {
  // GIVEN the dev policy (one NAT instance) WHEN synthesized
  const synth = synthNetwork({ natPerAz: false, natInstance: true });

  it("GIVEN natInstance WHEN synthesized THEN no NAT gateway or Elastic IP exists and every private subnet routes to the instance's interface", () => {
    expect(list(synth, "aws_nat_gateway")).toEqual([]);
    expect(list(synth, "aws_eip")).toEqual([]);
    const [instance] = list(synth, "aws_instance");
    const routes = list(synth, "aws_route").filter((r) => r.network_interface_id !== undefined);
    expect(routes).toHaveLength(1);
    expect(routes[0].destination_cidr_block).toBe("0.0.0.0/0");
    expect(String(routes[0].network_interface_id)).toMatch(
      /aws_instance\.network_nat-instance.*primary_network_interface_id/,
    );
    expect(list(synth, "aws_route_table_association")).toHaveLength(4); // 2 public + 2 private on the one table
    expect(instance).toMatchObject({
      instance_type: "t4g.nano",
      source_dest_check: false,
      associate_public_ip_address: true,
      metadata_options: { http_tokens: "required", http_put_response_hop_limit: 1 },
      root_block_device: { encrypted: true },
    });
    expect(String(instance.subnet_id)).toMatch(/public-0/);
  });

  it("GIVEN natInstance WHEN synthesized THEN its security group admits only the private subnets, on the nodes' egress ports", () => {
    const ingress = list(synth, "aws_vpc_security_group_ingress_rule").map(
      (r) => `${r.cidr_ipv4}:${r.from_port}`,
    );
    expect(ingress.sort()).toEqual([
      "10.40.128.0/20:443",
      "10.40.128.0/20:587",
      "10.40.144.0/20:443",
      "10.40.144.0/20:587",
    ]);
    const egress = list(synth, "aws_vpc_security_group_egress_rule").map(
      (r) => `${r.cidr_ipv4}:${r.from_port}`,
    );
    expect(egress.sort()).toEqual(["0.0.0.0/0:443", "0.0.0.0/0:587"]);
  });

  it("GIVEN natInstance WHEN deployed THEN it boots after the public subnet's internet path, survives AL2023 releases and is replaced new-first", () => {
    const [instance] = list(synth, "aws_instance");
    expect([...(instance.depends_on as string[])].sort()).toEqual([
      expect.stringMatching(/^aws_route\.network_public-default_\w+$/),
      expect.stringMatching(/^aws_route_table_association\.network_public-rta-0_\w+$/),
    ]);
    expect(instance.lifecycle).toEqual({ ignore_changes: ["ami"], create_before_destroy: true });
    // a failed package install would end the script before the MASQUERADE rule: it retries
    expect(String(instance.user_data)).toMatch(
      /for attempt in .*\n\s+dnf install -y iptables-services && break/,
    );
  });

  it("GIVEN natInstance with natPerAz true WHEN synthesized THEN one line names the conflict", () => {
    expect(() => synthNetwork({ natPerAz: true, natInstance: true })).toThrow(
      /natPerAz: got true; allowed: false or unset with natInstance/,
    );
  });
});
