/**
 * Who may read the Terraform state. The state of an env holds every secret Terraform
 * generated for it (DB password, broker token, fernet key, JWT secret, admin password),
 * so whoever can read `<namePrefix>/<env>/terraform.tfstate` can read every secret of
 * that env. Each env file may list its deployers in `stateAccessPrincipalArns`.
 *
 * One state bucket serves every env of a namePrefix, and its policy is one resource of
 * the state stack, which any env's deploy applies. So the policy is built from EVERY env
 * file that shares the bucket, never from the deploying env alone: deploying dev must
 * neither drop prod's restriction nor lock prod's deployers out. Per env, the env's
 * state prefix is denied to everyone outside its list; once every env has a list, the
 * whole bucket is denied to everyone outside their union. The account root user is
 * always exempt: it is the break-glass path (it can delete a bucket policy that denies
 * it anything).
 */
import * as path from "node:path";
import { AirflowConfig, CONFIG_DIR, clusterNames, envNames, loadConfig } from "./config";

/**
 * Alias of the state bucket's KMS key. The `/` keeps it apart from the cluster keys'
 * `alias/<namePrefix>-<env>` for every possible env name.
 * @param namePrefix the config's namePrefix
 */
export function stateKeyAlias(namePrefix: string): string {
  return `alias/${namePrefix}/terraform-state`;
}

/**
 * Every env whose state lives in the same bucket as `config`'s: the env files of `dir`
 * with the same state bucket name, plus `config` itself, sorted by env. A broken env file
 * is a ConfigError naming it: skipping it could drop its restriction or lock its
 * deployers out.
 * @param config the env being synthesized
 * @param dir directory of the env files; default `AIRFLOW_CONFIG_DIR` or `config/`
 */
export function envsSharingStateBucket(
  config: AirflowConfig,
  dir = process.env.AIRFLOW_CONFIG_DIR ?? CONFIG_DIR,
): AirflowConfig[] {
  const others = envNames(dir)
    .filter((env) => env !== config.env)
    .map((env) => loadConfig(env, dir))
    .filter((c) => c.stateBucketName === config.stateBucketName);
  return [config, ...others].sort((a, b) => a.env.localeCompare(b.env));
}

/** The access rules of one state bucket. */
export interface StateAccess {
  /** Per env that sets `stateAccessPrincipalArns`: its state prefix (`<namePrefix>/<env>/`) and principals. */
  readonly envs: readonly {
    readonly env: string;
    readonly prefix: string;
    readonly principals: readonly string[];
  }[];
  /** Union of every env's principals when EVERY env sets a list; undefined otherwise (no bucket-wide deny). */
  readonly bucketPrincipals?: readonly string[];
  /** Envs that set no list (their state is readable by any principal IAM allows). */
  readonly unrestricted: readonly string[];
}

/**
 * The rules for the envs sharing a bucket (see the module comment).
 * @param envs the result of {@link envsSharingStateBucket}
 */
export function stateAccessOf(envs: readonly AirflowConfig[]): StateAccess {
  const restricted = envs.filter((c) => c.stateAccessPrincipalArns !== undefined);
  const union = [...new Set(restricted.flatMap((c) => c.stateAccessPrincipalArns ?? []))].sort();
  return {
    envs: restricted.map((c) => ({
      env: c.env,
      prefix: `${path.posix.dirname(clusterNames(c).stateKey)}/`,
      principals: c.stateAccessPrincipalArns ?? [],
    })),
    bucketPrincipals: restricted.length === envs.length && union.length > 0 ? union : undefined,
    unrestricted: envs.filter((c) => c.stateAccessPrincipalArns === undefined).map((c) => c.env),
  };
}

/** An ARN's six colon-separated parts (the last keeps any further colons). */
function arnParts(arn: string): string[] {
  const parts = arn.split(":");
  return [...parts.slice(0, 5), parts.slice(5).join(":")];
}

/**
 * IAM's `ArnLike`: each of the six ARN parts matched on its own, `*` any run of
 * characters, `?` one character.
 * @param pattern e.g. "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*"
 * @param arn e.g. "arn:aws:iam::123456789012:role/deployer"
 */
export function arnLike(pattern: string, arn: string): boolean {
  if (pattern.split(":").length < 6 || arn.split(":").length < 6) return false;
  const a = arnParts(arn);
  return arnParts(pattern).every((part, i) => {
    const re = part
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".");
    return new RegExp(`^${re}$`, "s").test(a[i]);
  });
}

/**
 * Whether a principal can reach an env's state under the bucket policy {@link stateAccessOf}
 * writes: `undefined` when it can, else the reason it cannot. `npm run deploy` asks this
 * before applying the policy, so a deployer never locks itself out.
 * @param access the bucket's rules
 * @param env the env being deployed
 * @param principalArn the caller's IAM role or user ARN (not an assumed-role session ARN)
 */
export function stateAccessDenial(
  access: StateAccess,
  env: string,
  principalArn: string,
): string | undefined {
  if (/^arn:aws[a-z-]*:iam::[0-9]{12}:root$/.test(principalArn)) return undefined;
  const own = access.envs.find((e) => e.env === env);
  if (own && !own.principals.some((p) => arnLike(p, principalArn))) {
    return `stateAccessPrincipalArns of config/${env}.json`;
  }
  if (access.bucketPrincipals && !access.bucketPrincipals.some((p) => arnLike(p, principalArn))) {
    return "stateAccessPrincipalArns of any env sharing the state bucket";
  }
  return undefined;
}
