import { Testing } from "cdktf";
import { Vpc } from "@cdktf/provider-aws/lib/vpc";
import { SecurityGroups, SecurityGroupsProps, securityGroupRules } from "../../modules/security-groups";
import { Block, bareStack, list } from "./helpers";

function synthGroups(overrides: Partial<SecurityGroupsProps> = {}): string {
  const stack = bareStack();
  new SecurityGroups(stack, "sg", {
    resourcePrefix: "airflow-dev",
    vpc: new Vpc(stack, "vpc", { cidrBlock: "10.40.0.0/16" }),
    dbEngine: "mysql",
    ...overrides,
  });
  return Testing.synth(stack);
}

/** "${aws_security_group.sg_api-server_ABCD1234.id}" -> "api-server" */
function role(ref: unknown): string {
  const m = /aws_security_group\.sg_([a-z-]+)_[A-F0-9]+\.id/.exec(String(ref));
  if (!m) throw new Error(`not a security group reference: ${String(ref)}`);
  return m[1];
}

/** Every rule as "<source> -> <target>:<port>" (ingress) or "<group> => <dest>:<port>" (egress). */
function ingress(synth: string): string[] {
  return list(synth, "aws_vpc_security_group_ingress_rule")
    .map(
      (r: Block) =>
        `${r.cidr_ipv4 ?? role(r.referenced_security_group_id)} -> ${role(r.security_group_id)}:${r.from_port}`,
    )
    .sort();
}
function egress(synth: string): string[] {
  return list(synth, "aws_vpc_security_group_egress_rule")
    .map(
      (r: Block) =>
        `${role(r.security_group_id)} => ${r.cidr_ipv4 ?? role(r.referenced_security_group_id)}:${r.from_port}`,
    )
    .sort();
}

describe("SecurityGroups", () => {
  it("GIVEN defaults WHEN synthesized THEN ingress is exactly the least-privilege table", () => {
    // WHEN
    const synth = synthGroups();
    // THEN: no CIDR ingress at all (uiAllowedCidrs empty), no port 22, data stores only from nodes.
    expect(ingress(synth)).toEqual(
      [
        "alb-internal -> api-server:5555",
        "alb-internal -> api-server:8080",
        "alb-public -> api-server:8080",
        "api-server -> alb-internal:5555",
        "api-server -> database:3306",
        "api-server -> efs:2049",
        "api-server -> redis:6379",
        "api-server -> scheduler:8794",
        "api-server -> worker:8793",
        "scheduler -> alb-internal:8080",
        "scheduler -> database:3306",
        "scheduler -> efs:2049",
        "scheduler -> redis:6379",
        "worker -> alb-internal:8080",
        "worker -> efs:2049",
        "worker -> redis:6379",
      ].sort(),
    );
  });

  it("GIVEN defaults WHEN synthesized THEN workers have no path to the metadata DB and the log servers answer the api-server alone", () => {
    // Tasks run DAG authors' code on workers: they reach the DB only through the Execution API.
    const rules = [...ingress(synthGroups()), ...egress(synthGroups())];
    expect(rules.filter((r) => /worker.*database|database.*worker/.test(r))).toEqual([]);
    expect(rules.filter((r) => /:879[34]$/.test(r)).sort()).toEqual(
      [
        "api-server -> scheduler:8794",
        "api-server -> worker:8793",
        "api-server => scheduler:8794",
        "api-server => worker:8793",
      ].sort(),
    );
  });

  it("GIVEN defaults WHEN synthesized THEN egress is SG-to-SG except HTTPS (AWS APIs) and SMTP submission", () => {
    const out = egress(synthGroups());
    const toCidr = out.filter((r) => r.includes("0.0.0.0/0"));
    expect(toCidr).toEqual(
      [
        "api-server => 0.0.0.0/0:443",
        "scheduler => 0.0.0.0/0:443",
        "scheduler => 0.0.0.0/0:587",
        "worker => 0.0.0.0/0:443",
        "worker => 0.0.0.0/0:587",
      ].sort(),
    );
    // Data stores initiate nothing.
    expect(out.filter((r) => /^(database|redis|efs) =>/.test(r))).toEqual([]);
  });

  it("GIVEN every rule WHEN synthesized THEN each is TCP on one port with a description, and none touches port 22", () => {
    const synth = synthGroups({ uiAllowedCidrs: ["203.0.113.0/24"], https: true });
    const rules = [
      ...list(synth, "aws_vpc_security_group_ingress_rule"),
      ...list(synth, "aws_vpc_security_group_egress_rule"),
    ];
    for (const r of rules) {
      expect(r.ip_protocol).toBe("tcp");
      expect(r.from_port).toBe(r.to_port);
      expect(r.from_port).not.toBe(22);
      expect(String(r.description).length).toBeGreaterThan(5);
    }
    for (const g of list(synth, "aws_security_group")) {
      expect(g.ingress).toBeUndefined();
      expect(g.egress).toBeUndefined();
      expect(g.description).toBeTruthy();
    }
  });

  it.each<[string, Partial<SecurityGroupsProps>, string[]]>([
    ["HTTP only", { uiAllowedCidrs: ["203.0.113.0/24"] }, ["203.0.113.0/24 -> alb-public:80"]],
    [
      "HTTPS with redirect",
      { uiAllowedCidrs: ["203.0.113.0/24", "198.51.100.0/24"], https: true },
      [
        "198.51.100.0/24 -> alb-public:443",
        "198.51.100.0/24 -> alb-public:80",
        "203.0.113.0/24 -> alb-public:443",
        "203.0.113.0/24 -> alb-public:80",
      ],
    ],
    ["no allowed CIDRs", { https: true }, []],
  ])(
    "GIVEN %s WHEN synthesized THEN the public load balancer admits only the configured CIDRs",
    (_n, props, expected) => {
      const fromCidr = ingress(synthGroups(props)).filter((r) => /^\d/.test(r));
      expect(fromCidr).toEqual(expected.sort());
    },
  );

  it("GIVEN Flower WHEN synthesized THEN 5555 is never open to a CIDR", () => {
    const synth = synthGroups({ uiAllowedCidrs: ["0.0.0.0/0"], https: true });
    const flower = list(synth, "aws_vpc_security_group_ingress_rule").filter((r) => r.from_port === 5555);
    expect(flower.length).toBeGreaterThan(0);
    expect(flower.every((r) => r.cidr_ipv4 === undefined)).toBe(true);
  });

  it.each([
    ["postgres", 5432],
    ["mysql", 3306],
  ] as const)("GIVEN a %s database WHEN synthesized THEN the DB port is %d", (dbEngine, port) => {
    const dbRules = ingress(synthGroups({ dbEngine })).filter((r) => r.includes("-> database"));
    expect(dbRules).toEqual([`api-server -> database:${port}`, `scheduler -> database:${port}`]);
  });

  it("GIVEN LocalExecutor WHEN synthesized THEN no worker, broker or internal-LB group or rule exists", () => {
    const synth = synthGroups({ celery: false });
    expect(
      list(synth, "aws_security_group")
        .map((g) => g.name)
        .sort(),
    ).toEqual([
      "airflow-dev-alb-public",
      "airflow-dev-api-server",
      "airflow-dev-database",
      "airflow-dev-efs",
      "airflow-dev-scheduler",
    ]);
    expect(ingress(synth)).toEqual(
      [
        "alb-public -> api-server:8080",
        "api-server -> database:3306",
        "api-server -> efs:2049",
        "api-server -> scheduler:8794",
        "scheduler -> database:3306",
        "scheduler -> efs:2049",
      ].sort(),
    );
  });

  it.each([
    ["CeleryExecutor", true],
    ["LocalExecutor", false],
  ])(
    "GIVEN the rule table and %s WHEN synthesized THEN the rules are exactly the rows whose groups exist",
    (_n, celery) => {
      // GIVEN
      const uiAllowedCidrs = ["203.0.113.0/24", "198.51.100.0/24"];
      const stack = bareStack();
      const groups = new SecurityGroups(stack, "sg", {
        resourcePrefix: "airflow-dev",
        vpc: new Vpc(stack, "vpc", { cidrBlock: "10.40.0.0/16" }),
        dbEngine: "postgres",
        uiAllowedCidrs,
        https: true,
        celery,
      });
      const table = securityGroupRules({
        databasePort: groups.databasePort,
        publicPorts: groups.publicPorts,
        uiAllowedCidrs,
      });
      // WHEN
      const synth = Testing.synth(stack);
      // THEN: each link is one ingress and one egress rule, each CIDR row one rule, nothing else.
      const present = new Set(
        list(synth, "aws_security_group").map((g) => String(g.name).replace("airflow-dev-", "")),
      );
      const links = table.links.filter((l) => present.has(l.from) && present.has(l.to));
      const cidrRules = table.cidrRules.filter((r) => present.has(r.group));
      expect(ingress(synth)).toEqual(
        [
          ...links.map((l) => `${l.from} -> ${l.to}:${l.port}`),
          ...cidrRules.filter((r) => r.direction === "in").map((r) => `${r.cidr} -> ${r.group}:${r.port}`),
        ].sort(),
      );
      expect(egress(synth)).toEqual(
        [
          ...links.map((l) => `${l.from} => ${l.to}:${l.port}`),
          ...cidrRules.filter((r) => r.direction === "out").map((r) => `${r.group} => ${r.cidr}:${r.port}`),
        ].sort(),
      );
    },
  );
});
