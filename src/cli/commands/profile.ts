import type { Command } from "commander";
import { InvalidInputError } from "../../errors.js";
import type { Profile } from "../../profile.js";
import { globalsOf, type RegisterCommand, withMemory } from "../context.js";
import { type ScopeFlags, scopeFlags, scopeOf } from "../options.js";
import { print, printJson, shortDate, table } from "../output.js";

interface ProfileFlags extends ScopeFlags {
  set?: string;
  field?: string[];
  clear?: boolean;
  history?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `name=Ana` → ["name", "Ana"]; `name=` removes the field. */
function fieldOf(flag: string): [string, string | null] {
  const at = flag.indexOf("=");
  if (at <= 0) {
    throw new InvalidInputError({
      message: `profile: --field takes key=value (e.g. --field name=Ana; --field name= removes it), got "${flag}".`,
      field: "field",
    });
  }
  const value = flag.slice(at + 1).trim();
  return [flag.slice(0, at).trim(), value === "" ? null : value];
}

function show(profile: Profile | null, json: boolean): void {
  if (json) printJson({ profile });
  else print(profile ? `${profile.text}\n\n(updated ${shortDate(profile.updatedAt)} UTC)` : "No profile in this scope.");
}

export const profileCommand: RegisterCommand = (program) => {
  scopeFlags(
    program
      .command("profile")
      .description("show or change the profile of a scope: the few facts injected into every call")
      .option("--set <text>", "replace the whole profile")
      .option("--field <key=value>", "set one field (repeatable); key= removes it", collect)
      .option("--clear", "clear the profile (its text stays in its history)")
      .option("--history", "every change of the profile, oldest first"),
  ).action(async (options: ProfileFlags, command: Command) => {
    const globals = globalsOf(command);
    const scope = scopeOf(options, "profile");
    const actions = [options.set !== undefined, options.field !== undefined, options.clear === true, options.history === true];
    if (actions.filter(Boolean).length > 1) {
      throw new InvalidInputError({ message: "profile: give one of --set, --field, --clear or --history (or none, to show the profile)." });
    }
    if (options.history) {
      const history = await withMemory(globals, {}, (memory) => memory.profileHistory(scope));
      if (globals.json) return printJson({ history });
      return print(
        table(
          [{ header: "event", width: 6 }, { header: "previous" }, { header: "new" }, { header: "when (UTC)", width: 16 }],
          history.map((entry) => [entry.event, entry.previousValue ?? "", entry.newValue ?? "", shortDate(entry.createdAt)]),
        ),
      );
    }
    const update =
      options.set !== undefined
        ? options.set
        : options.field !== undefined
          ? Object.fromEntries(options.field.map(fieldOf))
          : options.clear
            ? null
            : undefined;
    const profile = await withMemory(globals, { create: update !== undefined }, (memory) =>
      update === undefined ? memory.profile(scope) : memory.setProfile(scope, update),
    );
    show(profile, globals.json === true);
  });
};
