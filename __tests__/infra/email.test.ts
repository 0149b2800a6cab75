/**
 * E-mail: an SES identity exists exactly when a notification address is configured; the
 * sender and the region's SES SMTP endpoint reach the nodes through the settings.
 */
import { IamUser } from "@cdktf/provider-aws/lib/iam-user";
import { SesEmailIdentity } from "@cdktf/provider-aws/lib/ses-email-identity";
import { SsmParameter } from "@cdktf/provider-aws/lib/ssm-parameter";
import { Testing } from "cdktf";
import { ClusterEmail, ClusterEmailProps } from "../../modules/email";

/** The dev cluster's names; each test adds what it is about. */
const names = { resourcePrefix: "airflow-dev", parameterPrefix: "/airflow/dev", region: "us-east-1" };

describe("ClusterEmail", () => {
  it.each([
    ["us-east-1", "email-smtp.us-east-1.amazonaws.com"],
    ["eu-central-1", "email-smtp.eu-central-1.amazonaws.com"],
  ])("GIVEN region %s WHEN synthesized THEN the SMTP host is %s", (region, host) => {
    let email: ClusterEmail | undefined;
    Testing.synthScope((scope) => {
      email = new ClusterEmail(scope, "email", { ...names, region });
    });
    expect(email?.smtpHost).toBe(host);
  });

  it("GIVEN notificationEmail WHEN synthesized THEN an SES identity for it exists and is the sender", () => {
    // GIVEN a notification address WHEN synthesized
    let email: ClusterEmail | undefined;
    const json = Testing.synthScope((scope) => {
      email = new ClusterEmail(scope, "email", { ...names, notificationEmail: "team@example.com" });
    });
    // THEN one identity for that address, used as the sender
    expect(json).toHaveResourceWithProperties(SesEmailIdentity, { email: "team@example.com" });
    expect(email?.fromEmail).toBe("team@example.com");
    expect(email?.identity).toBeDefined();
  });

  it("GIVEN no notificationEmail WHEN synthesized THEN there is no SES identity and the sender is never deliverable", () => {
    // GIVEN no notification address WHEN synthesized
    let email: ClusterEmail | undefined;
    const json = Testing.synthScope((scope) => {
      email = new ClusterEmail(scope, "email", names);
    });
    // THEN no identity, and a sender in a reserved domain
    expect(json).not.toHaveResource(SesEmailIdentity);
    expect(email?.identity).toBeUndefined();
    // RFC 2606 .invalid: valid syntax for airflow.cfg (the bootstrap checks it), never delivered.
    expect(email?.fromEmail).toBe("noreply@airflow-dev.invalid");
  });
});

describe("smtp_default connection", () => {
  it("GIVEN the smtp backend, notificationEmail and a key WHEN synthesized THEN smtp_default is a SecureString connection of references to a SES-only IAM user's key", () => {
    // GIVEN emailBackend smtp, notificationEmail and the cluster key WHEN synthesized
    const json = Testing.synthScope((scope) => {
      new ClusterEmail(scope, "email", {
        ...names,
        backend: "smtp",
        notificationEmail: "team@example.com",
        region: "eu-west-1",
        key: { arn: "arn:aws:kms:eu-west-1:123456789012:key/k" },
      });
    });
    // THEN the connection sits where the Parameter Store backend looks for smtp_default
    expect(json).toHaveResourceWithProperties(SsmParameter, {
      name: "/airflow/dev/connections/smtp_default",
      type: "SecureString",
      key_id: "arn:aws:kms:eu-west-1:123456789012:key/k",
      value: expect.stringMatching(
        new RegExp(
          [
            '^\\$\\{jsonencode\\(\\{"conn_type" = "smtp"',
            '"host" = "email-smtp\\.eu-west-1\\.amazonaws\\.com"',
            '"port" = 587',
            '"login" = aws_iam_access_key\\.[\\w-]+\\.id',
            '"password" = aws_iam_access_key\\.[\\w-]+\\.ses_smtp_password_v4',
          ].join(", "),
        ),
      ),
    });
    // and the user may only send as the identity
    const parsed = JSON.parse(json) as { data: Record<string, Record<string, { statement: unknown[] }>> };
    const doc = Object.values(parsed.data.aws_iam_policy_document)[0];
    expect(doc.statement).toEqual([
      {
        sid: "SendAsIdentity",
        actions: ["ses:SendRawEmail"],
        resources: [expect.stringMatching(/^\$\{aws_ses_email_identity\.[\w-]+\.arn\}$/)],
      },
    ]);
    expect(json).toHaveResourceWithProperties(IamUser, { name: "airflow-dev-eu-west-1-ses-smtp" });
  });

  it.each<[string, Partial<ClusterEmailProps>]>([
    ["no notification e-mail", { backend: "smtp", key: { arn: "arn:aws:kms:x" } }],
    ["no key", { backend: "smtp", notificationEmail: "team@example.com" }],
    // The default: the nodes send through the SES API with their instance role, so there is no access key.
    ["the ses backend (default)", { notificationEmail: "team@example.com", key: { arn: "arn:aws:kms:x" } }],
  ])("GIVEN %s WHEN synthesized THEN neither the connection nor its IAM user is created", (_name, props) => {
    const json = Testing.synthScope((scope) => {
      new ClusterEmail(scope, "email", { ...names, ...props });
    });
    expect(json).not.toHaveResource(SsmParameter);
    expect(json).not.toHaveResource(IamUser);
  });
});

describe("invalid e-mail props", () => {
  it.each<[string, Partial<ClusterEmailProps>, RegExp]>([
    [
      "an unknown backend",
      { backend: "sendmail" as "ses" },
      /backend: got "sendmail"; allowed: "ses" or "smtp"/,
    ],
    [
      "a display name instead of an address",
      { notificationEmail: "Team <team@example.com>" },
      /notificationEmail: got "Team <team@example.com>"; allowed: an e-mail address/,
    ],
  ])("GIVEN %s WHEN synthesized THEN one line names the prop", (_name, props, message) => {
    expect(() =>
      Testing.synthScope((scope) => {
        new ClusterEmail(scope, "email", { ...names, ...props });
      }),
    ).toThrow(message);
  });
});
