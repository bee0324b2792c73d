import { Agent, RunContext, run, setTracingDisabled } from "@openai/agents";
import { assistantMessage, functionCall, ScriptedModel } from "@openai/agents/testing";
import { beforeAll } from "vitest";
import { memoryTools } from "../../integrations/openai-agents/index.js";
import { type ToolDriver, type ToolOutcome, testToolScenarios } from "./tool-scenarios.js";

beforeAll(() => setTracingDisabled(true));

const agentsTools: ToolDriver = {
  name: "OpenAI Agents (memoryTools on an Agent, scope in the run context)",
  scopeHint: /context: \{ userId: "alice" \}/,
  async call(memory, toolName, args, scope) {
    const model = new ScriptedModel([[functionCall(toolName, args, { callId: "call-1" })], [assistantMessage("done")]]);
    const agent = new Agent({ name: "assistant", instructions: "You are a helpful assistant.", model, tools: memoryTools({ memory }) });
    const outcome: ToolOutcome = { tools: {} };
    let result: { newItems: { type: string; output?: unknown }[] };
    try {
      result = (await run(agent, "hi", scope ? { context: new RunContext(scope) } : {})) as never;
    } catch (error) {
      // The run itself refused the call (arguments that do not fit the strict schema).
      outcome.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      return outcome;
    } finally {
      for (const tool of model.calls[0]?.request.tools ?? []) {
        if (tool.type === "function") outcome.tools[tool.name] = { description: tool.description, schema: tool.parameters };
      }
    }
    for (const item of result.newItems) {
      if (item.type !== "tool_call_output_item") continue;
      const text = String(item.output);
      try {
        outcome.output = JSON.parse(text);
      } catch {
        outcome.error = text;
      }
    }
    return outcome;
  },
};

testToolScenarios(agentsTools);
