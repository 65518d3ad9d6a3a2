"""`mantle twilio-sim`: serve the simulator, or text a number through a running one."""

from __future__ import annotations

import click
import httpx

from twilio_sim.store import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, DEFAULT_NUMBERS, Store, new_sid


@click.group("twilio-sim", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8020, show_default=True, type=int)
@click.option("--account-sid", default=DEFAULT_ACCOUNT_SID, show_default=True)
@click.option("--auth-token", default=DEFAULT_AUTH_TOKEN, show_default=True)
@click.option("--status-delay", default=0.05, show_default=True, type=float,
              help="Seconds between a message's status steps (queued → sent → delivered).")
@click.option("--number", "numbers", multiple=True, default=DEFAULT_NUMBERS, show_default=True,
              help="A phone number the account owns (repeat for more).")
@click.pass_context
def twilio_sim(ctx: click.Context, host: str, port: int, account_sid: str, auth_token: str,
               status_delay: float, numbers: tuple[str, ...]) -> None:
    """A local Twilio-compatible server: the Messages API, signed webhooks and status callbacks."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from twilio_sim.app import create_sim

    click.echo(f"Twilio simulator at http://{host}:{port}")
    click.echo(f"  account SID: {account_sid}\n  auth token:  {auth_token}")
    click.echo(f"  numbers:     {', '.join(numbers)}")
    click.echo(f"  point Mantle at it: MANTLE_TWILIO_API_BASE_URL=http://{host}:{port}")
    store = Store(account_sid=account_sid, auth_token=auth_token,
                  numbers={number: new_sid("PN") for number in numbers})
    uvicorn.run(create_sim(store, status_delay=status_delay), host=host, port=port, log_level="warning")


@twilio_sim.command("send")
@click.option("--to", "to", required=True, help="The routed number being texted (E.164).")
@click.option("--from", "from_", required=True, help="The phone sending the text (E.164).")
@click.option("--url", required=True, help="The number's webhook URL (routing the number returns it).")
@click.option("--sim", default="http://127.0.0.1:8020", show_default=True, help="The running simulator.")
@click.option("--wait", default=15.0, show_default=True, type=float,
              help="Seconds to wait for a reply sent through the REST API.")
@click.argument("text")
def send(to: str, from_: str, url: str, sim: str, wait: float, text: str) -> None:
    """Text TEXT from a phone to a number: a signed inbound SMS to its webhook; prints the reply."""
    with httpx.Client(base_url=sim, timeout=30) as client:
        try:
            seen = {m["sid"] for m in client.get("/sim/messages", params={"to": from_}).json()["messages"]}
            answer = client.post("/sim/inbound", json={"url": url, "from": from_, "to": to, "body": text})
        except httpx.HTTPError as exc:
            message = f"no simulator answers at {sim} ({exc}); start `mantle twilio-sim`"
            raise click.ClickException(message) from None
        result = answer.json()
        if answer.status_code != 200:
            raise click.ClickException(result.get("error", answer.text))
        click.echo(f"sent {result['message_sid']}: webhook answered {result['status_code']} "
                   f"in {result['ack_ms']:.1f} ms", err=True)
        if result["status_code"] != 200:
            click.echo(result["twiml"], err=True)
            raise SystemExit(1)
        for reply in result["replies"]:
            click.echo(f"< {reply}")
        if result["replies"]:
            return
        # The reply comes later, through the REST API: wait until the phone receives something new.
        client.get("/sim/wait", params={"to": from_, "count": len(seen), "timeout": wait}, timeout=wait + 10)
        fresh = [m for m in client.get("/sim/messages", params={"to": from_}).json()["messages"]
                 if m["sid"] not in seen]
        for message in fresh:
            click.echo(f"< {message['body']}")
        if not fresh:
            click.echo(f"no reply within {wait:g} s", err=True)
