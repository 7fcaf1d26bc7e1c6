/**
 * Live commands for a call, published by control on the call's channel (`keys.callCommands`)
 * and handled by whichever core node runs the call's session. Pub/sub reaches every node; only
 * the owner is subscribed, so `publish` returning 0 means the call is not live anywhere. The owner
 * subscribes before the session goes live (before it is listed or records `call.started`), so a
 * call anyone can see as started already receives its commands.
 */
export type CallCommand =
  | { type: 'hangup'; reason?: string }
  | { type: 'transfer'; to: string }
  | { type: 'say'; text: string };

/** Parses a command message; null for anything malformed (it is logged and dropped). */
export function parseCallCommand(message: string): CallCommand | null {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (v.type === 'hangup')
    return { type: 'hangup', reason: typeof v.reason === 'string' ? v.reason : undefined };
  if (v.type === 'transfer' && typeof v.to === 'string' && v.to.length > 0)
    return { type: 'transfer', to: v.to };
  if (v.type === 'say' && typeof v.text === 'string' && v.text.length > 0)
    return { type: 'say', text: v.text };
  return null;
}
