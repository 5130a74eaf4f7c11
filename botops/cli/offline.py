"""The offline demo of ``make run`` without a token: the sandbox in-process and a short conversation.

A few demo members chat, the administrator calls ``/health``, and every message in the sandbox is
printed as it happens until Ctrl-C, so a newcomer sees the real bot working before creating a token.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape

from botops.sandbox import DemoWorld, Message, Sandbox, SandboxError
from botops.sandbox.interactions import InteractionResponse

if TYPE_CHECKING:
    from botops.bot import Bot
    from botops.settings import Settings

__all__ = ["OfflineDemo", "offline_settings"]

log = logging.getLogger(__name__)
console = Console(highlight=False)


def offline_settings(settings: Settings, sandbox: Sandbox, demo: DemoWorld) -> Settings:
    """Return ``settings`` pointed at ``sandbox``, with commands synced to its demo guild."""
    return settings.model_copy(
        update={
            "discord_token": SecretStr(sandbox.token),
            "discord_api_base": sandbox.api_base,
            "discord_gateway_url": sandbox.gateway_url,
            "discord_dev_guild_id": demo.guild.id,
            "guild_ready_timeout": min(settings.guild_ready_timeout, 0.1),  # the sandbox is local
            "owner_ids": [demo.world.owner.id],
        }
    )


class OfflineDemo:
    """Drive the demo guild and print what happens in it."""

    def __init__(self, sandbox: Sandbox, demo: DemoWorld, *, chat: bool = True) -> None:
        self.sandbox = sandbox
        self.demo = demo
        self.chat = chat
        self._printed = 0

    async def __call__(self, bot: Bot) -> None:
        """Run the conversation once the bot is ready, then print new messages until cancelled."""
        self._banner()
        watcher = asyncio.create_task(self._print_messages(), name="offline-demo-printer")
        try:
            if self.chat:
                await self._conversation()
            await watcher
        finally:
            watcher.cancel()

    def _banner(self) -> None:
        console.rule(
            f"[bold]offline Discord[/]: guild {escape(repr(self.demo.guild.name))} at {self.sandbox.url}"
        )
        console.print(
            "No DISCORD_TOKEN is set, so botops runs the real bot against its built-in sandbox. "
            "Put a token in .env to run it on Discord.",
            style="dim",
        )

    async def _conversation(self) -> None:
        demo = self.demo
        carol, dave = demo.members[0], demo.members[1]
        lines = [
            (carol, "Hi everyone! Is the bot awake?"),
            (dave, "It should be: botops just started it on the sandbox."),
            (demo.admin, "I'll ask it with /health."),
        ]
        for member, content in lines:
            await self.sandbox.send_message(demo.general, member, content)
            await asyncio.sleep(0.4)
        try:
            result = await self.sandbox.invoke_slash("health", member=demo.admin, channel=demo.general)
            response = await result.response(timeout=10)
        except (SandboxError, TimeoutError) as error:
            console.print(f"[red]/health did not answer:[/] {escape(str(error))}")
            return
        channel, admin = escape(demo.general.name or ""), escape(demo.admin.user.username)
        console.print(f"[cyan]#{channel}[/] [bold]{admin}[/] used /health")
        self._print_response(response)
        await asyncio.sleep(0.4)
        await self.sandbox.send_message(demo.general, carol, "Everything green. Thanks, bot!")
        await asyncio.sleep(0.4)
        console.print(
            f"The bot keeps running. Drive the sandbox from another shell with its HTTP control plane at "
            f"{self.sandbox.url}/_sandbox/ (docs/sandbox.md). Ctrl-C stops both.",
            style="dim",
        )

    def _print_response(self, response: InteractionResponse) -> None:
        visibility = " (only they see it)" if response.ephemeral else ""
        console.print(f"  [bold]{escape(self.demo.world.bot.username)}[/] answered{visibility}:")
        if response.content:
            console.print(f"    {escape(response.content)}")
        for embed in response.embeds:
            console.print(f"    [bold]{escape(embed.get('title', ''))}[/]")
            for item in embed.get("fields", []):
                console.print(f"      {escape(item['name'])}: {escape(item['value'])}")

    async def _print_messages(self) -> None:
        last = [0]  # a cell, so the check below always sees the newest value
        while True:
            new: list[Message] = await self.sandbox.changed.wait_for(
                lambda: self.sandbox.messages_after(last[0]), timeout=3600, what="a message"
            )
            for message in new:
                self._print_message(message)
                last[0] = message.id

    def _print_message(self, message: Message) -> None:
        channel = self.sandbox.channel(message.channel_id)
        author = message.author.username
        style = "green" if message.author.bot else "bold"
        # Names and content come from users: escaped, so brackets in them are shown, not read as markup.
        console.print(
            f"[cyan]#{escape(channel.name or '')}[/] [{style}]{escape(author)}[/]: {escape(message.content)}",
            soft_wrap=True,
        )
        for embed in message.embeds:
            console.print(
                f"    [bold]{escape(embed.get('title', ''))}[/] {escape(embed.get('description', ''))}"
            )
