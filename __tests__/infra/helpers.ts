/**
 * Shared helpers for the core-infra tests: a validated config from partial input, a
 * bare stack with the providers, and typed access to the synthesized JSON.
 */
import { TerraformStack, Testing } from "cdktf";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { RandomProvider } from "@cdktf/provider-random/lib/provider";
// Types of the Terraform matchers registered in jest.setup.ts.
import "cdktf/lib/testing/adapters/jest";
import { AirflowConfig, AirflowConfigInput, parseConfig } from "../../modules/config";

/** A validated config from partial input (env "dev" unless given). */
export function config(input: Partial<AirflowConfigInput> = {}): AirflowConfig {
  return parseConfig({ env: "dev", ...input }, "test");
}

/** A fresh stack with the AWS and random providers. */
export function bareStack(): TerraformStack {
  const stack = new TerraformStack(Testing.app(), "test");
  new AwsProvider(stack, "aws", { region: "us-east-1" });
  new RandomProvider(stack, "random");
  return stack;
}

/** A synthesized block: attribute name -> value (snake_case, as Terraform sees it). */
export type Block = Record<string, unknown>;

/** All blocks of one resource type in a synthesized stack, by logical name. */
export function resources(synth: string, type: string): Record<string, Block> {
  const json = JSON.parse(synth) as { resource?: Record<string, Record<string, Block>> };
  return json.resource?.[type] ?? {};
}

/** The blocks of one type as a list. */
export function list(synth: string, type: string): Block[] {
  return Object.values(resources(synth, type));
}

/** Total number of resources in a synthesized stack. */
export function resourceCount(synth: string): number {
  const json = JSON.parse(synth) as { resource?: Record<string, Record<string, Block>> };
  return Object.values(json.resource ?? {}).reduce((n, byName) => n + Object.keys(byName).length, 0);
}
