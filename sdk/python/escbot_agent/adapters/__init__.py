"""Adapters for agent frameworks, each behind its own extra: `escbot_agent.adapters.langgraph`
(`escbot-agent[langgraph]`), `.openai_agents` (`[openai-agents]`), `.pydantic_ai`
(`[pydantic-ai]`), and the MCP server `escbot_agent.mcp_server` (`[mcp]`). Importing this
package loads none of them."""
