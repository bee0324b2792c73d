import { expect, test } from "vitest";
import { uuidv7 } from "../src/runtime.js";

test("ids are UUID version 7 and increase within the process, same millisecond included (equal createdAt kept write order by id)", () => {
  const ids = Array.from({ length: 5000 }, () => uuidv7(1_700_000_000_000));
  for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect([...ids].sort()).toEqual(ids);
  expect(new Set(ids).size).toBe(ids.length);
  // A clock that goes back does not make ids go back.
  const later = uuidv7(1_600_000_000_000);
  expect(later > (ids.at(-1) as string)).toBe(true);
});
