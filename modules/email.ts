/**
 * E-mail for DAGs: an SES e-mail identity for the sender, the region's SES SMTP host,
 * and the `smtp_default` Airflow connection the nodes' SMTP settings use.
 *
 * SES sandbox: a new account can send only to verified identities. Until production
 * access is granted (a support request), the RECIPIENT address must be verified too -
 * with the default config the sender is also the recipient (`alert_email`), so the one
 * verification mail that `deploy` triggers covers both.
 *
 * Transport (`backend`): with "ses" (default) the nodes send through the SES
 * API with their instance role (the Amazon provider's SES e-mail backend; the node role
 * may `ses:SendEmail`/`ses:SendRawEmail` as this identity only), so no IAM user or access
 * key exists. With "smtp", SES's SMTP interface is used instead; it cannot use a role and
 * authenticates with an IAM user's access key, the password being derived from its secret
 * (`ses_smtp_password_v4`). That user may only `ses:SendRawEmail` as this identity.
 * The connection is stored as a SecureString (cluster key) at
 * `<parameterPrefix>/connections/smtp_default`, where Airflow's Parameter Store secrets
 * backend looks it up; synthesized JSON holds only references, the values live in the
 * (encrypted) state. Rotate with `terraform apply -replace` on the access key.
 */
import { DataAwsIamPolicyDocument } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { IamAccessKey } from "@cdktf/provider-aws/lib/iam-access-key";
import { IamUser } from "@cdktf/provider-aws/lib/iam-user";
import { IamUserPolicy } from "@cdktf/provider-aws/lib/iam-user-policy";
import { SesEmailIdentity } from "@cdktf/provider-aws/lib/ses-email-identity";
import { SsmParameter } from "@cdktf/provider-aws/lib/ssm-parameter";
import { Fn } from "cdktf";
import { Construct } from "constructs";
import { skipCheckov } from "./checkov";
import { EmailBackend, HasArn, PORTS, PropError, SMTP_CONNECTION_ID, iamName } from "./contract";

/** Properties of {@link ClusterEmail}. */
export interface ClusterEmailProps {
  /** `<namePrefix>-<env>`: names the SMTP user and the never-deliverable fallback sender. */
  readonly resourcePrefix: string;
  /** `/<namePrefix>/<env>`: the connection parameter is `<parameterPrefix>/connections/smtp_default`. */
  readonly parameterPrefix: string;
  /** AWS region whose SES endpoint sends the mail; part of the SMTP user's (global) IAM name. */
  readonly region: string;
  /**
   * Sender address; SES verifies it, and by default it is also the alert recipient.
   * @default none - no SES identity and a never-deliverable sender, so nothing is mailed
   */
  readonly notificationEmail?: string;
  /**
   * How DAG e-mail leaves the cluster; "smtp" needs an IAM user's key, "ses" the node role only.
   * @default "ses"
   */
  readonly backend?: EmailBackend;
  /**
   * KMS key of the SecureString connection parameter.
   * @default none - no `smtp_default` connection is created
   */
  readonly key?: HasArn;
}

/** SES sender identity (when `notificationEmail` is set), and SMTP settings with `backend: "smtp"`. */
export class ClusterEmail extends Construct {
  /** The SES identity; undefined when no notification e-mail is configured. */
  public readonly identity?: SesEmailIdentity;
  /**
   * Sender address: `notificationEmail`, else `noreply@<resourcePrefix>.invalid`
   * (RFC 2606 reserved TLD - syntactically valid for airflow.cfg, never deliverable, and
   * SES refuses it because no identity exists, so nothing is mailed by accident).
   */
  public readonly fromEmail: string;
  /** `email-smtp.<region>.amazonaws.com`. */
  public readonly smtpHost: string;
  /** `<parameterPrefix>/connections/smtp_default`; undefined without identity or key. */
  public readonly smtpConnection?: SsmParameter;

  public constructor(scope: Construct, id: string, props: ClusterEmailProps) {
    super(scope, id);
    const backend = props.backend ?? "ses";
    if (backend !== "ses" && backend !== "smtp") {
      throw new PropError(this, "backend", backend, '"ses" or "smtp"');
    }
    // The address becomes the SES identity and airflow.cfg's from_email: one mailbox, no display name.
    if (
      props.notificationEmail !== undefined &&
      !/^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/.test(props.notificationEmail)
    ) {
      throw new PropError(
        this,
        "notificationEmail",
        props.notificationEmail,
        "an e-mail address such as data-team@example.com",
      );
    }
    this.smtpHost = `email-smtp.${props.region}.amazonaws.com`;
    if (!props.notificationEmail) {
      this.fromEmail = `noreply@${props.resourcePrefix}.invalid`;
      return;
    }
    // Creating the identity makes SES mail a verification link to the address.
    const identity = new SesEmailIdentity(this, "sender", { email: props.notificationEmail });
    this.identity = identity;
    this.fromEmail = props.notificationEmail;
    if (!props.key || backend !== "smtp") return;

    const user = new IamUser(this, "smtp-user", {
      name: iamName(props.resourcePrefix, props.region, "ses-smtp"),
      path: "/airflow/",
    });
    const why =
      "SES's SMTP interface authenticates only with an IAM user's key (no role); the user can do nothing " +
      "but ses:SendRawEmail as this cluster's identity";
    skipCheckov(user, "CKV_AWS_273", why);
    const policy = new IamUserPolicy(this, "smtp-send", {
      name: "ses-send-as-identity",
      user: user.name,
      policy: new DataAwsIamPolicyDocument(this, "smtp-send-doc", {
        statement: [{ sid: "SendAsIdentity", actions: ["ses:SendRawEmail"], resources: [identity.arn] }],
      }).json,
    });
    skipCheckov(policy, "CKV_AWS_40", `${why}; a group for one technical user adds nothing`);
    const accessKey = new IamAccessKey(this, "smtp-key", { user: user.name });

    // Airflow's JSON connection form; every secret part is a reference, never a literal.
    this.smtpConnection = new SsmParameter(this, "smtp-connection", {
      name: `${props.parameterPrefix}/connections/${SMTP_CONNECTION_ID}`,
      description: `${props.resourcePrefix}: Airflow connection ${SMTP_CONNECTION_ID} (SES SMTP credentials)`,
      type: "SecureString",
      keyId: props.key.arn,
      value: Fn.jsonencode({
        conn_type: "smtp",
        host: this.smtpHost,
        port: PORTS.smtpSubmission,
        login: accessKey.id,
        password: accessKey.sesSmtpPasswordV4,
        extra: { from_email: props.notificationEmail, disable_ssl: true, disable_tls: false },
      }),
    });
  }
}
