/**
 * The call flow, declared once: reception and the departments it hands callers to. Everything
 * else is built from this: the machine's states and transitions, the agents' prompts and voices,
 * the control tools, the keypad map, the settings (`VOICE_<NAME>`, `TRANSFER_<NAME>`), the
 * offline model, the greeting, the console's banner, the inspector and the generated path tests.
 *
 * To add a department, add an entry to `DEFAULT_FLOW.departments` and its `TRANSFER_<NAME>` line
 * to `.env.example`. `defineFlow` checks the declaration and says what is wrong in one line.
 */

export interface DepartmentSpec {
  /** The department's name: its machine state, agent and tool names. Lowercase, e.g. `billing`. */
  readonly name: string;
  /** What it handles, for reception's prompt and the tool description: "bills, charges, ...". */
  readonly handles: string;
  /** How the greeting and reception's offers name it: "technical support". */
  readonly spoken: string;
  /** The specialist's role, the first lines of its prompt. */
  readonly role: string;
  /** The OpenAI voice it speaks with; `VOICE_<NAME>` overrides it. */
  readonly voice: string;
  /** The keypad key that asks for it (`KEYPAD_MAP` overrides the whole map). */
  readonly key: string;
  /** The offline model: the words it hears as a request for this department, its topic, its answer. */
  readonly offline: {
    readonly listensFor: RegExp;
    readonly topic: string;
    readonly answer: string;
  };
}

export interface ReceptionSpec {
  /** Reception's role; the departments and what they handle are appended from the flow. */
  readonly role: string;
  readonly voice: string;
  /** What reception helps with itself, for refusal lines: "finding the right team". */
  readonly handles: string;
}

export interface Flow {
  readonly reception: ReceptionSpec;
  readonly departments: readonly DepartmentSpec[];
}

const NAME = /^[a-z][a-z0-9]*$/;
const RESERVED = new Set(['reception', 'greeting', 'intent', 'transferring', 'ended', 'human']);

/** Checks a flow and returns it; throws one line naming the entry and what to fix. */
export function defineFlow(flow: Flow): Flow {
  const seenKeys = new Map<string, string>();
  const seenNames = new Set<string>();
  if (flow.departments.length === 0) throw new Error('The flow has no departments: add one.');
  for (const department of flow.departments) {
    const { name, key } = department;
    if (!NAME.test(name) || RESERVED.has(name)) {
      throw new Error(
        `Department "${name}": a name is one lowercase word (a-z, 0-9), not ${[...RESERVED].join(', ')}.`,
      );
    }
    if (seenNames.has(name)) throw new Error(`Department "${name}" is declared twice.`);
    seenNames.add(name);
    if (!/^[0-9*#]$/.test(key) || key === '0') {
      throw new Error(
        `Department "${name}": key "${key}" must be one of 1-9, * or # (0 is a person).`,
      );
    }
    const other = seenKeys.get(key);
    if (other) throw new Error(`Department "${name}": key ${key} is already ${other}'s.`);
    seenKeys.set(key, name);
    for (const field of ['handles', 'spoken', 'role', 'voice'] as const) {
      if (!department[field].trim()) throw new Error(`Department "${name}": ${field} is empty.`);
    }
  }
  return flow;
}

export const DEFAULT_FLOW: Flow = defineFlow({
  reception: {
    role:
      'You are the receptionist. Greet callers, find out what they need and hand them to the ' +
      'right team. Hand off as soon as the need is clear; do not try to solve it yourself. Put ' +
      'everything the caller said that matters in the summary.',
    voice: 'alloy',
    handles: 'finding the right team',
  },
  departments: [
    {
      name: 'billing',
      handles: 'bills, charges, refunds, payment methods and subscriptions',
      spoken: 'billing',
      role: 'You are the billing specialist. You handle bills, charges, refunds, payment methods and subscriptions.',
      voice: 'sage',
      key: '1',
      offline: {
        listensFor:
          /\b(bill(s|ed|ing)?|invoices?|charge[ds]?|charging|refunds?|payments?|pay|paid|credit card|card|receipts?|overcharged|fees?|subscription|money back|cancel(l?ing|l?ation)?|close my account)\b/i,
        topic: 'a billing question',
        answer:
          "I've noted it on your account and a confirmation will reach you by email within one business day. Is there anything else?",
      },
    },
    {
      name: 'support',
      handles: 'products and accounts that are not working',
      spoken: 'technical support',
      role: 'You are the support specialist. You troubleshoot products and accounts that are not working, step by step.',
      voice: 'echo',
      key: '2',
      offline: {
        listensFor:
          /\b(support|broken|not working|doesn'?t work|does not work|stopped working|won'?t (start|load|connect|work)|errors?|crash(es|ed|ing)?|bugs?|fix|problems?|issues?|log ?in|password|reset|outage|offline|slow|trouble|technical|internet|wi-?fi|connection|is down|went down|no signal)\b/i,
        topic: 'a technical problem',
        answer:
          "Let's fix that: please restart the device and the app, then tell me if the problem is still there.",
      },
    },
    {
      name: 'sales',
      handles: 'plans and prices, upgrades and new purchases',
      spoken: 'sales',
      role: 'You are the sales specialist. You explain plans and prices, handle upgrades and new purchases.',
      voice: 'shimmer',
      key: '3',
      offline: {
        listensFor:
          /\b(buy|buying|purchase|pricing|prices?|quotes?|upgrade|plans?|demo|sales|new account|sign up|discounts?|order|cost|licen[cs]es?)\b/i,
        topic: 'plans and pricing',
        answer:
          'Our Pro plan is 20 dollars a month per user and includes priority support. Would you like me to set it up?',
      },
    },
  ],
});

/** The departments' names, in declaration order. */
export function departmentsOf(flow: Flow): string[] {
  return flow.departments.map((d) => d.name);
}

/** Every agent of the flow: reception first. */
export function agentsOf(flow: Flow): string[] {
  return ['reception', ...departmentsOf(flow)];
}

export function departmentOf(flow: Flow, name: string): DepartmentSpec | undefined {
  return flow.departments.find((d) => d.name === name);
}

/** "billing, technical support or sales" */
export function spokenList(flow: Flow): string {
  const names = flow.departments.map((d) => d.spoken);
  return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

/** The setting that holds a department's (or reception's) transfer number: `TRANSFER_BILLING`. */
export function transferSetting(agent: string): string {
  return `TRANSFER_${agent.toUpperCase()}`;
}

/** The setting that overrides an agent's voice: `VOICE_BILLING`. */
export function voiceSetting(agent: string): string {
  return `VOICE_${agent.toUpperCase()}`;
}
