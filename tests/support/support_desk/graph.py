"""Draft a reply to a customer's ticket; send it once a person has approved it."""

from typing import NotRequired, TypedDict

from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

llm = ChatOpenAI(model="gpt-4o-mini")


class Ticket(TypedDict):
    customer: str
    message: str
    draft: NotRequired[str]
    sent: NotRequired[bool]
    reviewer: NotRequired[str]


def draft(state: Ticket) -> dict:
    reply = llm.invoke([("system", "You write short, polite support replies."),
                        ("user", f"{state['customer']} wrote: {state['message']}")])
    return {"draft": reply.content}


def send(state: Ticket) -> dict:
    answer = interrupt({"question": "Send this reply?", "draft": state["draft"]})
    if answer["action"] == "reject":
        return {"sent": False, "reviewer": answer["approver"]}
    text = (answer.get("edited") or {}).get("draft", state["draft"])
    return {"draft": text, "sent": True, "reviewer": answer["approver"]}


builder = StateGraph(Ticket)
builder.add_node("draft", draft)
builder.add_node("send", send)
builder.add_edge(START, "draft")
builder.add_edge("draft", "send")
builder.add_edge("send", END)
