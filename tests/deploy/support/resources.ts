/**
 * Reading what the mocked SST run registered: find resources by type, unwrap Pulumi secrets,
 * decode task definitions, and answer "which container gets this path" the way the ALB would.
 */
import type { CapturedResource, HarnessResult } from './run-sst.ts';

/** Pulumi's marker for a secret value in serialized properties. */
const SECRET_SIG = '4dabf18193072939515e22adb298388d';

/** The value with every Pulumi secret wrapper removed. */
export function unsecret<T = unknown>(value: unknown): T {
  if (Array.isArray(value)) return value.map((v) => unsecret(v)) as T;
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (SECRET_SIG in o) return unsecret(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, unsecret(v)])) as T;
  }
  return value as T;
}

export type Inputs = Record<string, unknown>;

export function ofType(run: HarnessResult, type: string): (CapturedResource & { inputs: Inputs })[] {
  return run.resources
    .filter((r) => r.type === type)
    .map((r) => ({ ...r, inputs: unsecret<Inputs>(r.inputs) }));
}

export function one(run: HarnessResult, type: string, name: string): CapturedResource & { inputs: Inputs } {
  const found = ofType(run, type).find((r) => r.name === name);
  if (!found)
    throw new Error(
      `no ${type} named ${name}; have ${ofType(run, type)
        .map((r) => r.name)
        .join(', ')}`,
    );
  return found;
}

export interface ContainerDefinition {
  name: string;
  stopTimeout?: number;
  environment: { name: string; value: string }[];
}

/** The container definitions of a service's task definition (`<Service>Task`). */
export function containerOf(run: HarnessResult, service: 'Core' | 'Control'): ContainerDefinition {
  const task = one(run, 'aws:ecs/taskDefinition:TaskDefinition', `${service}Task`);
  const defs = JSON.parse(String(task.inputs.containerDefinitions)) as ContainerDefinition[];
  const def = defs.find((d) => d.name === service);
  if (!def) throw new Error(`no container ${service} in ${service}Task`);
  return def;
}

export function envOf(run: HarnessResult, service: 'Core' | 'Control'): Record<string, string> {
  return Object.fromEntries(containerOf(run, service).environment.map((e) => [e.name, e.value]));
}

export interface AlbRule {
  path: string;
  priority: number;
  listenerArn: string;
  /** The port of the target group the rule forwards to: 8081 core, 8080 control. */
  targetPort: number;
  /** Every target group the rule forwards to, with its weight (one at 100 when not weighted). */
  targetGroups: { name: string; weight: number }[];
}

/** Every listener rule, resolved to the port of the target group(s) it forwards to. */
export function albRules(run: HarnessResult): AlbRule[] {
  const groups = ofType(run, 'aws:lb/targetGroup:TargetGroup');
  const groupOf = (arn: string) => {
    const group = groups.find((g) => arn.includes(`/${g.name}/`));
    if (!group) throw new Error(`listener rule forwards to an unknown target group ${arn}`);
    return group;
  };
  return ofType(run, 'aws:lb/listenerRule:ListenerRule').flatMap((r) => {
    const actions = r.inputs.actions as {
      type: string;
      targetGroupArn?: string;
      forward?: { targetGroups: { arn: string; weight?: number }[] };
    }[];
    const conditions = r.inputs.conditions as { pathPattern?: { values: string[] } }[];
    const forward = actions.find((a) => a.type === 'forward');
    const weighted = forward?.targetGroupArn
      ? [{ arn: forward.targetGroupArn, weight: 100 }]
      : (forward?.forward?.targetGroups ?? []).map((g) => ({ arn: g.arn, weight: g.weight ?? 0 }));
    const targetGroups = weighted.map((g) => ({ name: groupOf(g.arn).name, weight: g.weight }));
    const ports = new Set(weighted.map((g) => Number(groupOf(g.arn).inputs.port)));
    if (ports.size > 1) throw new Error(`rule ${r.name} forwards to more than one port`);
    return conditions.flatMap((c) =>
      (c.pathPattern?.values ?? []).map((path) => ({
        path,
        priority: Number(r.inputs.priority),
        listenerArn: String(r.inputs.listenerArn),
        targetPort: [...ports][0] ?? 0,
        targetGroups,
      })),
    );
  });
}

/** ALB path matching (`*` any run, `?` one character, case-sensitive), lowest priority first. */
export function albTargetPort(rules: AlbRule[], pathname: string): number | undefined {
  const sorted = [...rules].sort((a, b) => a.priority - b.priority);
  const matches = (pattern: string) =>
    new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    ).test(pathname);
  return sorted.find((r) => matches(r.path))?.targetPort;
}
