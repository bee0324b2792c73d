import { inMemoryHistory } from "../../src/history/in-memory-history.js";
import { testHistoryStore } from "./history-store-conformance.js";

testHistoryStore({ name: "inMemoryHistory", create: () => inMemoryHistory() });
