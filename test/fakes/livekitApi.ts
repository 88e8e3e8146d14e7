/**
 * A stand-in for LiveKit's server API. livekit-server-sdk speaks Twirp: JSON over
 * `POST /twirp/livekit.<Service>/<Method>` with a bearer token. This keeps SIP trunks and
 * dispatch rules in memory, records every request, and lets a test decide how dialling and
 * transfers turn out (or hold them until it says so).
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TwirpRequest {
  service: string;
  method: string;
  body: Record<string, unknown>;
  authorized: boolean;
}

/** How a held or scripted call answers: success, or a Twirp error with SIP metadata. */
export type TwirpOutcome =
  | { ok: true; body?: Record<string, unknown> }
  | { ok: false; status: number; code: string; msg: string; meta?: Record<string, string> };

export const sipFailure = (sipStatusCode: number, sipStatus: string): TwirpOutcome => ({
  ok: false,
  status: sipStatusCode === 408 || sipStatusCode === 480 ? 504 : 400,
  code:
    sipStatusCode === 408 || sipStatusCode === 480 ? 'deadline_exceeded' : 'failed_precondition',
  msg: `sip status: ${sipStatusCode}: ${sipStatus}`,
  meta: { sip_status_code: String(sipStatusCode), sip_status: sipStatus },
});

export interface HeldCall {
  arrived: Promise<void>;
  answer(outcome: TwirpOutcome): void;
}

export interface LiveKitApiStandIn {
  url: string;
  apiKey: string;
  apiSecret: string;
  requests: TwirpRequest[];
  /** Stored SIP objects, as the server would list them. */
  inboundTrunks: Record<string, unknown>[];
  outboundTrunks: Record<string, unknown>[];
  dispatchRules: Record<string, unknown>[];
  /** Room metadata as last written (UpdateRoomMetadata). */
  roomMetadata: Map<string, string>;
  /** Answer the next call of `method` with `outcome` (FIFO); unscripted calls succeed. */
  script(method: string, outcome: TwirpOutcome): void;
  /**
   * Hold the next call of `method` until answered. `arrived` resolves when the request comes
   * in; `answer` may be called before or after that.
   */
  hold(method: string): HeldCall;
  close(): Promise<void>;
}

export async function startLiveKitApiStandIn(): Promise<LiveKitApiStandIn> {
  const requests: TwirpRequest[] = [];
  const scripted = new Map<string, TwirpOutcome[]>();
  const held = new Map<string, ((reply: (o: TwirpOutcome) => void) => void)[]>();
  const inboundTrunks: Record<string, unknown>[] = [];
  const outboundTrunks: Record<string, unknown>[] = [];
  const dispatchRules: Record<string, unknown>[] = [];
  const roomMetadata = new Map<string, string>();
  let ids = 0;
  const id = (prefix: string) => `${prefix}_${(++ids).toString().padStart(4, '0')}`;

  const applyUpdate = (list: unknown, update: unknown): unknown => {
    const u = update as { set?: string[]; add?: string[]; remove?: string[] } | undefined;
    if (!u) return list;
    if (u.set) return u.set;
    const current = new Set((list as string[] | undefined) ?? []);
    for (const v of u.add ?? []) current.add(v);
    for (const v of u.remove ?? []) current.delete(v);
    return [...current];
  };

  const handlers: Record<string, (body: Record<string, unknown>) => Record<string, unknown>> = {
    'SIP/ListSIPInboundTrunk': () => ({ items: inboundTrunks }),
    'SIP/ListSIPOutboundTrunk': () => ({ items: outboundTrunks }),
    'SIP/ListSIPDispatchRule': () => ({ items: dispatchRules }),
    'SIP/CreateSIPInboundTrunk': (body) => {
      const trunk = { ...(body.trunk as object), sipTrunkId: id('ST') };
      inboundTrunks.push(trunk);
      return trunk;
    },
    'SIP/CreateSIPOutboundTrunk': (body) => {
      const trunk = { ...(body.trunk as object), sipTrunkId: id('ST') };
      outboundTrunks.push(trunk);
      return trunk;
    },
    'SIP/CreateSIPDispatchRule': (body) => {
      const rule = { ...((body.dispatchRule ?? body) as object), sipDispatchRuleId: id('SDR') };
      dispatchRules.push(rule);
      return rule;
    },
    'SIP/UpdateSIPInboundTrunk': (body) => updateTrunk(inboundTrunks, body),
    'SIP/UpdateSIPOutboundTrunk': (body) => updateTrunk(outboundTrunks, body),
    'SIP/UpdateSIPDispatchRule': (body) => {
      const rule = dispatchRules.find((r) => r.sipDispatchRuleId === body.sipDispatchRuleId);
      if (!rule) throw new Error('no such dispatch rule');
      if (body.replace) return Object.assign(rule, body.replace);
      const fields = (body.update ?? {}) as Record<string, unknown>;
      for (const [key, value] of Object.entries(fields)) {
        rule[key] = key === 'trunkIds' ? applyUpdate(rule[key], value) : value;
      }
      return rule;
    },
    'SIP/CreateSIPParticipant': (body) => ({
      participantId: id('PA'),
      participantIdentity: body.participantIdentity,
      roomName: body.roomName,
      sipCallId: id('SCL'),
    }),
    'SIP/TransferSIPParticipant': () => ({}),
    'AgentDispatchService/DeleteDispatch': () => ({}),
    'RoomService/UpdateRoomMetadata': (body) => {
      roomMetadata.set(body.room as string, body.metadata as string);
      return { name: body.room, metadata: body.metadata };
    },
    'AgentDispatchService/CreateDispatch': (body) => ({
      id: id('AD'),
      agentName: body.agentName,
      room: body.room,
      metadata: body.metadata,
    }),
  };

  function updateTrunk(list: Record<string, unknown>[], body: Record<string, unknown>) {
    const trunk = list.find((t) => t.sipTrunkId === body.sipTrunkId);
    if (!trunk) throw new Error('no such trunk');
    if (body.replace) return Object.assign(trunk, body.replace);
    const fields = (body.update ?? {}) as Record<string, unknown>;
    for (const [key, value] of Object.entries(fields)) {
      trunk[key] = ['numbers', 'allowedAddresses', 'allowedNumbers'].includes(key)
        ? applyUpdate(trunk[key], value)
        : value;
    }
    return trunk;
  }

  const server = createServer((req, res) => {
    void (async () => {
      const match = /^\/twirp\/livekit\.(\w+)\/(\w+)$/.exec(req.url ?? '');
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      const reply = (o: TwirpOutcome) => {
        if (o.ok) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(o.body ?? {}));
        } else {
          res.writeHead(o.status, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({ code: o.code, msg: o.msg, ...(o.meta ? { meta: o.meta } : {}) }),
          );
        }
      };
      if (req.method !== 'POST' || !match) {
        return reply({ ok: false, status: 404, code: 'bad_route', msg: `no route ${req.url}` });
      }
      const [, service, method] = match;
      const key = `${service}/${method}`;
      requests.push({
        service: service!,
        method: method!,
        body,
        authorized: /^Bearer \S+\.\S+\.\S+$/.test(req.headers.authorization ?? ''),
      });
      const handler = handlers[key];
      if (!handler) return reply({ ok: false, status: 404, code: 'bad_route', msg: key });
      const run = (o: TwirpOutcome | undefined) => {
        if (o && !o.ok) return reply(o);
        try {
          reply({ ok: true, body: o?.body ?? handler(body) });
        } catch (error) {
          reply({ ok: false, status: 404, code: 'not_found', msg: (error as Error).message });
        }
      };
      const waiting = held.get(method!)?.shift();
      if (waiting) return waiting(run);
      run(scripted.get(method!)?.shift());
    })();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    apiKey: 'APIstandin',
    apiSecret: 'stand-in-secret-that-is-long-enough-for-hs256',
    requests,
    inboundTrunks,
    outboundTrunks,
    dispatchRules,
    roomMetadata,
    script: (method, outcome) => {
      scripted.set(method, [...(scripted.get(method) ?? []), outcome]);
    },
    hold: (method) => {
      let arrive!: () => void;
      const arrived = new Promise<void>((resolve) => (arrive = resolve));
      let decided: TwirpOutcome | undefined;
      let reply: ((o: TwirpOutcome) => void) | undefined;
      held.set(method, [
        ...(held.get(method) ?? []),
        (r) => {
          reply = r;
          arrive();
          if (decided) r(decided);
        },
      ]);
      return {
        arrived,
        answer: (outcome) => {
          if (decided) return;
          decided = outcome;
          reply?.(outcome);
        },
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
