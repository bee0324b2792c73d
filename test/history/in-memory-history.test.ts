import { inMemoryHistory } from "../../src/history/in-memory-history.js";
import { testHistoryLog, testOutbox } from "../../src/testing/conformance/index.js";

testHistoryLog({ name: "inMemoryHistory", create: () => inMemoryHistory() });
testOutbox({ name: "inMemoryHistory", create: ({ now }) => inMemoryHistory({ now }) });
