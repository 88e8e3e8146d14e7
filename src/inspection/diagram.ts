/**
 * A machine definition (as an inspector sends it) drawn as a mermaid `stateDiagram-v2`.
 *
 * XState resolves the targets ("#call.billing", "intent", ...), so any machine works. Mermaid ids
 * are generated (`s0`, `s1`, ...) and mapped back to state paths, which the viewer uses to mark
 * the active state. Transitions between the same two states share one arrow, drawn without a
 * label so the states stay large enough to read: the events of each arrow are listed beside the
 * diagram (`transitions`). Transitions without a target (refusals: the state does not change)
 * are not drawn.
 */
import { type AnyStateNode, createMachine } from 'xstate';

export interface Diagram {
  /** The mermaid source. */
  text: string;
  /** Mermaid state id -> state path, e.g. `s2` -> `reception.intent`. */
  states: Record<string, string>;
  /** One entry per arrow: the state paths it joins and the events that take it. */
  transitions: { from: string; to: string; events: string[] }[];
}

function clean(text: string): string {
  return text.replace(/[^\w.\- ,*]/g, ' ').trim() || '?';
}

/** `xstate.after.1000.call.x` -> `after 1000`; other events as they are. */
function labelOf(eventType: string): string {
  const delayed = /^xstate\.after\.([^.]+)\./.exec(eventType);
  return clean(delayed ? `after ${delayed[1]}` : eventType);
}

function properAncestors(node: AnyStateNode): AnyStateNode[] {
  const chain: AnyStateNode[] = [];
  for (let parent = node.parent; parent; parent = parent.parent) chain.push(parent);
  return chain;
}

/** The state whose block declares an arrow: the closest common proper ancestor. */
function scopeOf(source: AnyStateNode, target: AnyStateNode, root: AnyStateNode): AnyStateNode {
  const targetChain = new Set(properAncestors(target));
  return properAncestors(source).find((node) => targetChain.has(node)) ?? root;
}

export function diagramOf(definition: string): Diagram | null {
  let root: AnyStateNode;
  try {
    root = createMachine(JSON.parse(definition) as Parameters<typeof createMachine>[0]).root;
  } catch {
    return null;
  }
  const ids = new Map<AnyStateNode, string>();
  const collect = (node: AnyStateNode) => {
    for (const child of Object.values(node.states) as AnyStateNode[]) {
      ids.set(child, `s${ids.size}`);
      collect(child);
    }
  };
  collect(root);

  // scope -> "sA --> sB" -> event labels
  const arrows = new Map<AnyStateNode, Map<string, Set<string>>>();
  for (const source of ids.keys()) {
    const transitions = [
      ...[...source.transitions.entries()].flatMap(([event, list]) =>
        list.map((t) => [labelOf(event), t] as const),
      ),
      ...(source.always ?? []).map((t) => ['always', t] as const),
    ];
    for (const [label, transition] of transitions) {
      for (const target of transition.target ?? []) {
        if (!ids.has(target)) continue;
        const scope = scopeOf(source, target, root);
        const inScope = arrows.get(scope) ?? new Map<string, Set<string>>();
        arrows.set(scope, inScope);
        const key = `${ids.get(source)} --> ${ids.get(target)}`;
        inScope.set(key, (inScope.get(key) ?? new Set()).add(label));
      }
    }
  }

  const lines = ['stateDiagram-v2'];
  const emit = (node: AnyStateNode, indent: string) => {
    const initial = node.type === 'compound' ? node.initial.target[0] : undefined;
    if (initial && ids.has(initial)) lines.push(`${indent}[*] --> ${ids.get(initial)}`);
    for (const child of Object.values(node.states) as AnyStateNode[]) {
      const declaration = `${indent}state "${clean(child.key)}" as ${ids.get(child)}`;
      if (Object.keys(child.states).length === 0) lines.push(declaration);
      else {
        lines.push(`${declaration} {`);
        emit(child, `${indent}  `);
        lines.push(`${indent}}`);
      }
      if (child.type === 'final') lines.push(`${indent}${ids.get(child)} --> [*]`);
    }
    for (const key of (arrows.get(node) ?? new Map()).keys()) lines.push(`${indent}${key}`);
  };
  emit(root, '  ');
  const states = Object.fromEntries(
    [...ids].map(([node, id]) => [id, node.path.join('.')] as const),
  );
  const transitions = [...arrows.values()].flatMap((inScope) =>
    [...inScope].map(([key, labels]) => {
      const [from = '', to = ''] = key.split(' --> ');
      return { from: states[from] ?? from, to: states[to] ?? to, events: [...labels] };
    }),
  );
  return { text: lines.join('\n'), states, transitions };
}
