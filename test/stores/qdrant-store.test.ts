import { afterAll, beforeAll } from "vitest";
import { qdrantStore } from "../../src/stores/qdrant-store.js";
import { type QdrantStandIn, startQdrantStandIn } from "../support/qdrant-stand-in.js";
import { testVectorStore } from "./vector-store-conformance.js";

// The real @qdrant/js-client-rest client against the Qdrant REST stand-in (test/support/qdrant-stand-in.ts),
// not against Qdrant: test/live/qdrant-store.live.test.ts runs the same suite on a real server.
let standIn: QdrantStandIn;
beforeAll(async () => {
  standIn = await startQdrantStandIn();
});
afterAll(() => standIn.close());

let collections = 0;
testVectorStore({
  name: "qdrantStore against the Qdrant REST stand-in",
  create: () => qdrantStore({ url: standIn.url, collection: `conformance_${collections++}` }),
});
