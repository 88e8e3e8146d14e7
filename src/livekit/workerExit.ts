/**
 * The worker leaves no processes behind when it exits.
 *
 * The SDK forks an inference process and idle job processes. It shuts them down when the
 * worker closes cleanly, but some exits skip that: a second Ctrl-C ("Force exit"), which also
 * happens when one keypress reaches the worker twice (from the terminal and relayed by npm or
 * tsx), the fatal "closing worker due to error", or a stop signal during start-up (the SDK's
 * close then waits for a start that never finishes, and the next signal ends the process).
 * The children ignore SIGINT and SIGTERM and only notice on their 15 s orphan timer, printing
 * "inference process orphaned" after the shell prompt has returned.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { constants } from 'node:os';

/**
 * Every live process below `pid` (its children, their children, ...), read from `/proc`;
 * empty where there is no `/proc`.
 */
export function descendantsOf(pid: number, procRoot = '/proc'): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync(procRoot);
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`${procRoot}/${entry}/stat`, 'utf8');
    } catch {
      continue; // it exited while we looked
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') continue; // exited, waiting to be reaped
    const parent = Number(fields[1]);
    children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** At exit, kill what this process started and is still running (they ignore SIGTERM). */
export function endChildrenAtExit(): void {
  process.on('exit', () => {
    for (const pid of descendantsOf(process.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/**
 * The first SIGINT or SIGTERM is the SDK's (drain, then close); a second one ends the worker
 * now, through `process.exit`, so the exit hook above still runs. Without this listener a second
 * SIGTERM would kill the process outright and skip every exit hook.
 */
export function exitOnSecondStopSignal(): void {
  let stopSignals = 0;
  const onStop = (signal: 'SIGINT' | 'SIGTERM') => {
    stopSignals += 1;
    if (stopSignals < 2) return;
    process.stderr.write('worker: second stop signal, exiting now\n');
    process.exit(128 + constants.signals[signal]);
  };
  process.on('SIGINT', onStop);
  process.on('SIGTERM', onStop);
}
