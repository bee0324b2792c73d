/** Every tool the MCP server registers, sorted: what each transport's client must list. */
export const mcpToolNames = [
  "add_memory",
  "delete_all_memories",
  "delete_memory",
  "get_memory",
  "get_profile",
  "list_memories",
  "related_memories",
  "search_memories",
  "update_memory",
  "update_profile",
];
