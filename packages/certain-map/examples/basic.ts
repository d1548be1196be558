// A request context passed through three steps of a proxy. Each step states the keys it needs
// in its parameter type; calling a step with a context that lacks one of them does not compile.
// Run: pnpm --filter @loch/certain-map example
import { defineContext, type Has, type SchemaOf } from '@loch/certain-map';

interface SocketAddr {
  host: string;
  port: number;
}

// Declare the schema once: the type of each key, and the key list for the runtime slots.
const Ctx = defineContext<{ peer: SocketAddr; requestId: string; upstream: string }>()([
  'peer',
  'requestId',
  'upstream',
]);
type Schema = SchemaOf<typeof Ctx>;

let nextId = 0;

// A step that adds a key: whatever the caller had stays present, plus requestId.
function assignRequestId<P extends keyof Schema>(ctx: Has<typeof Ctx, P>) {
  return ctx.set('requestId', `req-${++nextId}`);
}

// A step that needs peer and requestId, and adds upstream.
function route(ctx: Has<typeof Ctx, 'peer' | 'requestId'>) {
  const upstream = ctx.get('peer').host.startsWith('10.') ? 'internal:8080' : 'public:80';
  return ctx.set('upstream', upstream);
}

// The final step needs all three.
function handle(ctx: Has<typeof Ctx, 'peer' | 'requestId' | 'upstream'>): string {
  return `${ctx.get('requestId')} from ${ctx.get('peer').host}:${ctx.get('peer').port} -> ${ctx.get('upstream')}`;
}

const accepted = Ctx.empty().set('peer', { host: '10.1.2.3', port: 40000 });
const ctx = route(assignRequestId(accepted));
console.log(handle(ctx));

// Never called: it is here to show (and to check, via `pnpm typecheck`) what does not compile.
export function doesNotCompile(): void {
  // @ts-expect-error route needs requestId, and `accepted` only has peer
  route(accepted);
}

// take() hands a value out and retypes the context: handle(rest) would no longer compile.
const [requestId, rest] = ctx.take('requestId');
console.log(`took ${requestId}; requestId present: ${rest.has('requestId')}`);

// fork() branches: the copy keeps the type, and changes stay in one branch.
const retry = rest.fork().set('requestId', 'req-retry');
console.log(handle(retry));
console.log(`original has requestId: ${rest.has('requestId')}`);
