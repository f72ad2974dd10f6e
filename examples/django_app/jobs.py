"""The emit.run handlers of the project (any module will do; asgi.py imports this one)."""

from __future__ import annotations

from pydantic import BaseModel

from emit_push import EmitPush, Job

app = EmitPush()  # EMIT_SPACE_ID, EMIT_API_KEY, EMIT_PUSH_SECRET from the environment


class Invoice(BaseModel):
    order_id: str
    amount_cents: int


@app.on_job("invoice")
async def invoice(job: Job[Invoice]) -> dict[str, str]:
    job.log.info("invoicing", metadata={"order": job.payload.order_id})
    await job.progress(50, "PDF rendered")
    return {"invoice": f"s3://invoices/{job.payload.order_id}.pdf"}
