import { type Command, Option } from "commander";
import { ConfigError } from "../errors.js";
import type { AiSdkLanguageModel } from "../extraction/language-model.js";

/** The extraction model flags as commander parses them (each falls back to its environment variable). */
export interface ModelFlags {
  model?: string;
  baseUrl?: string;
}

/** Adds --model / --base-url, read from OPENAI_MODEL / OPENAI_BASE_URL when not given. */
export function modelFlags(command: Command): Command {
  return command
    .option("--infer", "extract facts with a model (OpenAI, or any OpenAI-compatible server: see --model, --base-url)")
    .addOption(new Option("--model <name>", "extraction model, with --infer (default gpt-5-mini)").env("OPENAI_MODEL"))
    .addOption(
      new Option("--base-url <url>", "an OpenAI-compatible server for --infer, e.g. http://localhost:11434/v1 (Ollama)").env(
        "OPENAI_BASE_URL",
      ),
    );
}

/**
 * The model `--infer` extracts with: OpenAI with OPENAI_API_KEY, or an OpenAI-compatible server at
 * --base-url / OPENAI_BASE_URL (the key, when the server wants one, again from OPENAI_API_KEY: a
 * key on the command line would show in the process list). Loads the optional `@ai-sdk/openai`.
 */
export async function extractionModel(flags: ModelFlags): Promise<AiSdkLanguageModel> {
  const apiKey = process.env.OPENAI_API_KEY;
  if (!apiKey && !flags.baseUrl) {
    throw new ConfigError({
      message:
        "--infer needs an extraction model: set OPENAI_API_KEY for OpenAI, or pass --base-url (or set OPENAI_BASE_URL) for an OpenAI-compatible server such as Ollama; --model (OPENAI_MODEL) picks the model. Or leave out --infer to store the text as it is.",
    });
  }
  let createOpenAI: typeof import("@ai-sdk/openai").createOpenAI;
  try {
    ({ createOpenAI } = await import("@ai-sdk/openai"));
  } catch (cause) {
    throw new ConfigError({
      message: "--infer talks to the model through the AI SDK's OpenAI provider: npm install @ai-sdk/openai ai (next to engram).",
      cause,
    });
  }
  const openai = createOpenAI({ apiKey: apiKey ?? "not-needed", baseURL: flags.baseUrl });
  const name = flags.model ?? "gpt-5-mini";
  // OpenAI-compatible servers speak chat completions; OpenAI itself the responses API.
  return flags.baseUrl ? openai.chat(name) : openai(name);
}
