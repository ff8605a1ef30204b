"""The tool taxonomy: key categories → application domains → entities → typed attributes.

K2 built its synthetic tool repository by *hierarchical domain generation*: key categories
(financial trading, software applications, robot control, …) are expanded into specific
application domains, and tools are drafted per domain. This module holds that hierarchy as
data — one line per domain in a small DSL parsed once, lazily — so the evolver (and the
classifier that places real tools into domains) works from typed, named resources instead of
free text. Each domain lists the entities its tools act on and each entity its typed
attributes; the one-sentence descriptions double as the text that real tools are embedded
against.

DSL, one domain per line under a ``# slug | Title | description`` category header::

    slug | one-sentence description | entity(attr, attr, …) entity(…) …

An attribute is ``name`` (type inferred from the name: ``*_at`` → date-time, ``*_email`` →
email, ``*_pct`` → 0–100, ``*_kg`` → number ≥ 0 …), ``name=a|b|c`` (string enum),
``name:T[lo..hi]`` (explicit type: s i n b d dt t email uri uuid, optional bounds),
``name[]`` (array; item type inferred from the singular or given by ``:T``),
``name{…}`` / ``name[]{…}`` (nested object / array of objects).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kimi_pipeline.text import singular

# One line per domain; see the module docstring for the attribute mini-language.
_TAXONOMY = """
# financial_trading | Financial trading | Trading securities, currencies, derivatives and digital assets, and managing the portfolios, risk limits and market data around them.
equity_trading | Placing, amending and tracking stock orders, open positions and price watchlists on a retail brokerage account. | order(symbol, side=buy|sell, order_type=market|limit|stop|stop_limit, quantity, limit_price, time_in_force=day|gtc|ioc|fok, status=open|filled|partially_filled|cancelled) position(symbol, quantity, average_price, unrealized_pnl:n, opened_at) watchlist(name, symbols[], alert_threshold_pct, is_public)
forex_trading | Trading currency pairs on margin with spot orders, leverage settings, stop-loss protection and rate alerts. | fx_order(currency_pair, side=buy|sell, lot_size:n[0.01..100], leverage:i[1..500], stop_loss_price, take_profit_price, status=pending|open|closed|cancelled) margin_account(currency, balance, margin_level_pct, is_hedging_enabled) price_alert(currency_pair, target_rate:n[0..], direction=above|below, expires_at)
crypto_exchange | Buying, selling and transferring cryptocurrencies on an exchange, including wallets, withdrawals and trading pairs. | crypto_order(trading_pair, side=buy|sell, order_type=market|limit|post_only, amount, limit_price, status=open|filled|cancelled) wallet(asset, balance, address:s, network=ethereum|bitcoin|solana|polygon|tron) withdrawal(asset, amount, destination_address:s, network=ethereum|bitcoin|solana|polygon|tron, requested_at, status=pending|approved|broadcast|completed|rejected)
options_trading | Building and managing equity option contracts and multi-leg strategies with strikes, expiries and greeks. | option_order(underlying_symbol, contract_type=call|put, strike_price, expiration_date, quantity, side=buy_to_open|sell_to_open|buy_to_close|sell_to_close) option_strategy(name, strategy_type=covered_call|iron_condor|vertical_spread|straddle|strangle, legs[]{contract_type=call|put, strike_price, quantity}, max_loss:n[0..]) option_chain(underlying_symbol, expiration_date, min_open_interest:i[0..], include_greeks:b)
portfolio_management | Tracking multi-asset investment portfolios, target allocations, rebalancing proposals and benchmarks. | portfolio(name, base_currency, benchmark_symbol, risk_profile=conservative|balanced|growth|aggressive) allocation_target(asset_class=equity|bond|cash|commodity|real_estate|crypto, target_weight_pct, tolerance_pct) rebalance_proposal(portfolio_name, trades_count, estimated_cost, status=draft|approved|executed|rejected, proposed_at)
algorithmic_trading | Deploying, backtesting and monitoring automated trading strategies and their execution bots. | trading_bot(name, strategy_type=momentum|mean_reversion|market_making|arbitrage|trend_following, symbols[], max_position_size:n[0..], is_enabled, status=running|paused|stopped) backtest(strategy_name, start_date, end_date, initial_capital:n[0..], commission_pct) execution_report(bot_name, fills_count, slippage_pct, realized_pnl:n, generated_at)
market_data | Retrieving real-time quotes, historical candles and economic calendar events for listed instruments. | quote(symbol, exchange=nyse|nasdaq|lse|tse|hkex|xetra, bid_price, ask_price, volume:i[0..]) candle_series(symbol, interval=1m|5m|15m|1h|1d|1w, start_at, end_at, adjusted:b) economic_event(country, event_name, importance=low|medium|high, scheduled_at, forecast_value:n)
risk_management | Monitoring trading risk with exposure limits, value-at-risk reports and margin-call alerts. | risk_limit(desk_name, limit_type=notional|var|drawdown|concentration, threshold_amount, currency, is_hard_limit) var_report(portfolio_name, confidence_level_pct, horizon_days, var_amount, generated_at) margin_call(account_number, shortfall_amount, due_at, status=open|met|liquidated)
fund_investing | Subscribing to, redeeming and comparing mutual funds and ETFs, including recurring investment plans. | fund(ticker, fund_type=mutual_fund|etf|index_fund|money_market, expense_ratio_pct, min_investment:n[0..], domicile_country) fund_subscription(ticker, amount, settlement_date, status=pending|settled|rejected|cancelled) investment_plan(ticker, monthly_amount, day_of_month:i[1..28], start_date, is_active)
commodities_trading | Trading futures on energy, metals and agricultural commodities, including contract rolls and delivery notices. | futures_order(contract_code, commodity=crude_oil|natural_gas|gold|silver|copper|wheat|corn|soybeans, side=buy|sell, contracts:i[1..1000], limit_price, status=working|filled|cancelled) futures_position(contract_code, contracts:i, entry_price, expiry_date, maintenance_margin:n[0..]) delivery_notice(contract_code, delivery_date, warehouse_location, quantity_tonnes:n[0..])
# banking_payments | Banking and payments | Retail and business banking: accounts, cards, transfers, loans, invoices, expenses and payment processing.
retail_banking | Managing personal checking and savings accounts, balances, statements and standing orders. | bank_account(account_type=checking|savings|money_market, nickname, currency, overdraft_limit, is_primary) statement(account_number, period_start:d, period_end:d, format=pdf|csv|ofx) standing_order(payee_name, amount, frequency=weekly|monthly|quarterly, next_payment_date, reference, status=active|paused|cancelled)
card_management | Issuing, freezing and configuring debit and credit cards, spending controls and card disputes. | card(card_type=debit|credit|virtual|prepaid, cardholder_name, daily_limit, is_frozen, expiry_month:i[1..12]) card_dispute(transaction_reference, disputed_amount, reason_code=fraud|not_received|duplicate|defective|other, opened_at, status=open|under_review|won|lost) spending_control(category=travel|dining|groceries|online|atm|gambling, monthly_limit, is_blocked)
money_transfers | Sending domestic and international money transfers, managing payees and comparing exchange quotes. | transfer(amount, currency, recipient_iban, transfer_speed=standard|express|instant, reference, scheduled_date, status=scheduled|processing|completed|failed|cancelled) payee(name, iban, bank_name, country, email) exchange_quote(source_currency, target_currency, amount, rate:n[0..], expires_at)
lending | Originating and servicing personal loans: applications, repayment schedules and early payoffs. | loan_application(loan_type=personal|auto|mortgage|student|business, requested_amount, term_months, annual_income, employment_status=employed|self_employed|unemployed|retired, submitted_at, status=draft|submitted|approved|declined) loan(principal_amount, interest_rate_pct, term_months, next_due_date, status=active|delinquent|paid_off|defaulted) repayment(amount, paid_on, method=ach|card|check|wire)
payment_processing | Accepting online payments for merchants: payment intents, refunds and payout settlements. | payment_intent(amount, currency, capture_method=automatic|manual, customer_email, description, status=requires_payment|processing|succeeded|canceled) refund(payment_reference, amount, reason=duplicate|fraudulent|requested_by_customer, created_at) payout(amount, currency, arrival_date, destination_iban, status=pending|in_transit|paid|failed)
invoicing | Creating, sending and reconciling business invoices, payment reminders and credit notes. | invoice(customer_email, currency, due_date, line_items[]{description, quantity, unit_price}, status=draft|sent|paid|overdue|void, notes) payment_reminder(invoice_number, send_at, channel=email|sms|letter, tone=friendly|firm|final) credit_note(invoice_number, amount, reason, issued_on)
expense_management | Capturing employee expenses and receipts, approving expense reports and reimbursing mileage. | expense(merchant_name, amount, currency, category=travel|meals|lodging|supplies|software|mileage, incurred_on, receipt_url) expense_report(title, period_start:d, period_end:d, total_amount, status=draft|submitted|approved|rejected|reimbursed) mileage_claim(distance_km, rate_per_km:n[0..10], trip_date, purpose)
budgeting | Personal budgeting: spending categories, monthly budgets, savings goals and transaction categorisation. | budget(month, category=housing|food|transport|utilities|entertainment|health|savings, planned_amount, rollover_enabled) savings_goal(name, target_amount, target_date, current_amount, priority) transaction(amount:n, merchant_name, posted_on, category=housing|food|transport|utilities|entertainment|health|income, is_recurring)
fraud_detection | Scoring transactions for fraud, working fraud alert queues, detection rules and blocklists. | fraud_alert(transaction_reference, risk_score, alert_type=card_not_present|account_takeover|velocity|geo_mismatch, status=new|investigating|confirmed|dismissed, raised_at) fraud_rule(name, condition, action=block|review|allow, priority, is_enabled) blocklist_entry(entry_type=email|ip_address|device_id|card_bin, value:s, reason, expires_at)
tax_filing | Preparing personal tax returns: income documents, deductions, estimated payments and filing status. | tax_return(tax_year:i[2000..2100], filing_status=single|married_joint|married_separate|head_of_household, total_income, status=draft|filed|accepted|rejected) tax_document(document_type=w2|1099|1098|k1|receipt, issuer_name, amount, uploaded_at) estimated_payment(tax_year:i[2000..2100], quarter:i[1..4], amount, due_date)
# software_applications | Software applications | Everyday productivity software: email, calendars, documents, spreadsheets, chat, notes, files, projects and CRM.
email_client | Reading, composing, searching and organising email messages, folders and filters in a mailbox. | email_message(to_email, subject, body, cc_emails[], is_read, received_at) mail_folder(name, parent_folder, color) mail_filter(from_email, subject_contains, action=move|label|forward|delete|mark_read, target_folder)
calendar | Scheduling meetings and events, checking availability and managing attendees and reminders. | event(title, start_at, end_at, location, attendee_emails[], visibility=public|private|busy_only) reminder(minutes_before:i[0..10080], method=popup|email|sms, is_enabled) availability_window(start_at, end_at, timezone, min_duration_minutes)
document_editor | Creating and editing collaborative text documents, comments and sharing permissions. | document(title, content, template=blank|report|memo|letter|resume, folder, last_edited_at) comment(quote_text, body, is_resolved, created_at) share_permission(grantee_email, role=viewer|commenter|editor|owner, expires_at, notify:b)
spreadsheets | Reading and writing spreadsheet workbooks: sheets, cell ranges, formulas and charts. | workbook(title, locale, owner_email) sheet(name, row_count:i[1..1000000], column_count:i[1..18278], is_hidden) cell_range(a1_range, values_json, value_input=raw|user_entered) chart(chart_type=line|bar|pie|scatter|area, source_range, title)
team_chat | Posting and searching messages in team chat channels and threads, reactions and user status. | channel(name, topic, is_private, member_count) chat_message(channel_name, text, thread_ts, posted_at) user_status(status_text, status_emoji, availability=active|away|do_not_disturb, expires_at)
note_taking | Capturing notes, notebooks, tags and checklists in a personal knowledge base. | note(title, content, tags[], is_pinned, updated_at) notebook(name, color, is_shared) checklist_item(text, is_checked, due_date, position:i[0..])
cloud_storage | Uploading, organising, sharing and versioning files and folders in cloud drive storage. | file(name, mime_type, size_mb, folder_path, modified_at) folder(name, parent_path, color) share_link(access=view|comment|edit, expires_at, password_protected:b, max_downloads:i[1..10000])
project_management | Planning projects with tasks, milestones, boards and assignments for teams. | task(title, description, assignee_email, status=todo|in_progress|blocked|done, priority, due_date, story_points:i[0..100]) milestone(name, due_date, is_completed) board(name, columns[], is_archived)
crm | Managing sales contacts, deals, pipeline stages and logged activities in a customer relationship manager. | contact(first_name, last_name, email, phone, company, lifecycle_stage=lead|mql|sql|customer|churned) deal(name, amount, currency, stage=prospecting|qualification|proposal|negotiation|won|lost, close_date, owner_email) activity(activity_type=call|email|meeting|note, subject, occurred_at, duration_minutes)
password_manager | Storing and sharing credentials, vaults and security reports in a team password manager. | vault_item(title, username, website_url, item_type=login|secure_note|credit_card|ssh_key|api_key, folder, updated_at) vault(name, member_emails[], is_shared) security_report(weak_count, reused_count, breached_count, generated_at)
# devops_cloud | DevOps and cloud | Provisioning and operating cloud infrastructure: compute, containers, CI/CD, storage, databases, monitoring and incidents.
compute_instances | Launching, resizing and stopping cloud virtual machines, machine images and SSH keys. | instance(name, instance_type, region, image_id, disk_gb, state=pending|running|stopped|terminated, launched_at) ssh_key(name, public_key, fingerprint) machine_image(name, os_family=ubuntu|debian|rhel|windows|amazon_linux, architecture=x86_64|arm64, created_at)
kubernetes | Managing Kubernetes workloads: deployments, pods, config maps, rollouts and scaling. | deployment(name, namespace, image, replicas:i[0..500], strategy=rolling_update|recreate, cpu_limit_millicores:i[1..64000]) pod(name, namespace, phase=pending|running|succeeded|failed|unknown, node_name, restart_count) config_map(name, namespace, data_json, immutable:b)
ci_cd | Running build and deployment pipelines, build artifacts and release approvals in CI/CD. | pipeline_run(repository, branch, commit_sha, trigger=push|pull_request|schedule|manual, status=queued|running|passed|failed|canceled, started_at) build_artifact(name, size_mb, retention_days:i[1..400], checksum_sha256) deploy_approval(environment=staging|production|canary, approver_email, decision=approved|rejected, comment)
monitoring_alerting | Defining metric alert rules, dashboards and on-call notification channels for production services. | alert_rule(name, metric_name, comparator=gt|gte|lt|lte|eq, threshold:n, window_minutes, severity=info|warning|critical) dashboard(title, panels_count, refresh_seconds:i[5..3600], is_shared) notification_channel(channel_type=email|slack|pagerduty|webhook|sms, target, is_enabled)
incident_management | Declaring, triaging and resolving production incidents, on-call shifts and postmortems. | incident(title, severity=sev1|sev2|sev3|sev4, status=triggered|acknowledged|mitigated|resolved, service_name, started_at, commander_email) oncall_shift(schedule_name, user_email, start_at, end_at) postmortem(incident_title, root_cause, action_items[], published_at)
dns_management | Managing DNS zones and records, TTLs and domain name registrations. | dns_zone(domain_name, is_private, dnssec_enabled) dns_record(hostname, record_type=a|aaaa|cname|mx|txt|ns|srv, value:s, ttl_seconds:i[60..86400], priority:i[0..65535]) domain_registration(domain_name, registrar, expires_on, auto_renew:b)
object_storage | Managing storage buckets, objects, lifecycle rules and public access in S3-compatible object storage. | bucket(name, region, versioning_enabled, storage_class=standard|infrequent_access|archive, is_public) storage_object(key, bucket_name, size_mb, content_type, uploaded_at) lifecycle_rule(prefix, transition_days:i[0..3650], expiration_days:i[1..3650], target_class=infrequent_access|archive|deep_archive)
databases | Provisioning managed databases, backups, read replicas and slow-query insights. | database_instance(name, engine=postgres|mysql|mariadb|sqlserver|mongodb, engine_version, storage_gb, multi_az:b) backup(database_name, backup_type=automated|manual|snapshot, size_gb, created_at, retention_days:i[1..35]) slow_query(query_text, mean_duration_ms, calls_count, first_seen_at)
serverless_functions | Deploying and invoking serverless functions, their triggers, configuration and logs. | function(name, runtime=python3.12|nodejs20|go1.x|java21|dotnet8, memory_mb:i[128..10240], timeout_seconds:i[1..900], handler) trigger(trigger_type=http|schedule|queue|storage_event, cron_expression, is_enabled) log_entry(function_name, level=debug|info|warning|error, message, logged_at)
cost_management | Tracking cloud spend by service, budgets, cost anomalies and rightsizing recommendations. | cost_budget(name, amount, currency, period=monthly|quarterly|yearly, alert_threshold_pct) cost_anomaly(service_name, expected_amount, actual_amount, detected_at, status=open|acknowledged|resolved) rightsizing_recommendation(resource_id, current_type, recommended_type, monthly_savings)
# robot_control | Robot control | Commanding and monitoring robots: industrial arms, mobile robots, drones, humanoids and autonomous fleets.
industrial_arms | Programming and jogging industrial robot arms, waypoints and pick-and-place jobs. | robot_arm(model, payload_kg, reach_mm, controller_ip, mode=manual|automatic|teach|emergency_stop) waypoint(name, x_mm:n, y_mm:n, z_mm:n, speed_pct, blend_radius_mm) pick_place_job(part_name, source_station, target_station, cycle_count:i[1..100000], gripper_force_n:n[0..500], status=queued|running|paused|completed)
warehouse_robots | Dispatching autonomous mobile robots in warehouses: missions, charging docks and zones. | mobile_robot(fleet_name, battery_pct, state=idle|moving|charging|error|maintenance, current_zone) mission(mission_type=pick|replenish|transport|inventory_scan, priority, from_location, to_location, deadline_at, status=queued|active|completed|aborted) charging_dock(name, zone, is_occupied, power_kw)
drone_operations | Planning and flying drone missions with flight plans, geofences and telemetry. | drone(serial_number, model, battery_pct, max_altitude_m, status=grounded|armed|in_flight|returning) flight_plan(name, waypoints[]{latitude, longitude, altitude_m}, cruise_speed_mps:n[0..40], return_home_on_low_battery:b) geofence(name, center_latitude:n[-90..90], center_longitude:n[-180..180], radius_m, fence_type=inclusion|exclusion)
humanoid_robots | Commanding humanoid and service robots: skills, behaviour sequences and safety events. | robot_skill(name, skill_type=grasp|walk|speak|navigate|gesture, max_duration_seconds, requires_supervision:b) behavior_sequence(name, steps[], loop_count:i[1..100], is_interruptible) safety_event(event_type=collision|fall|emergency_stop|overheating, severity=low|medium|high, occurred_at, joint_name)
autonomous_vehicle_fleet | Supervising autonomous vehicle fleets: trips, remote assistance requests and disengagements. | av_trip(pickup_latitude:n[-90..90], pickup_longitude:n[-180..180], dropoff_address:s, passenger_count:i[1..6], status=requested|assigned|en_route|completed|aborted) remote_assist_request(vehicle_name, reason=blocked_lane|construction|unclear_signal|sensor_fault, requested_at, resolution=proceed|reroute|pull_over) disengagement(vehicle_name, cause=driver_takeover|system_fault|weather, occurred_at, speed_kmh)
robot_simulation | Running robot simulations: scenes, episodes, sensor configurations and physics settings. | sim_scene(name, physics_engine=mujoco|bullet|isaac|gazebo, gravity_mps2:n, time_step_ms) sim_episode(scene_name, max_steps:i[1..1000000], random_seed:i[0..], recorded:b, status=queued|running|finished|failed) sensor_config(sensor_type=lidar|rgb_camera|depth_camera|imu|force_torque, frequency_hz, noise_std:n[0..1])
agricultural_robots | Operating field robots for weeding, harvesting and scouting with task maps and implements. | field_robot(name, implement=weeder|harvester|sprayer|seeder|scout, battery_pct, status=parked|working|transit|fault) field_task(field_name, task_type=weeding|harvesting|spraying|scouting, row_spacing_cm, scheduled_at) harvest_log(crop=strawberry|lettuce|apple|tomato|grape, picked_count, rejected_count, logged_at)
surgical_robotics | Configuring surgical robot sessions, instruments, arm calibration and procedure logs. | surgical_session(procedure_type=laparoscopy|prostatectomy|hysterectomy|cardiac|orthopedic, surgeon_email, scheduled_at, status=planned|in_progress|completed|aborted) instrument(instrument_type=grasper|scissors|needle_driver|stapler|camera, uses_remaining:i[0..100], serial_number) arm_calibration(arm_number:i[1..4], error_mm, performed_at, passed:b)
cleaning_robots | Scheduling robot vacuums and floor cleaners: cleaning jobs, room maps and consumables. | cleaning_job(rooms[], mode=vacuum|mop|vacuum_and_mop, suction_level=quiet|standard|max, start_at, status=scheduled|running|paused|done) room_map(name, area_m2, no_go_zones_count) consumable(part=main_brush|side_brush|filter|mop_pad, remaining_pct, replace_by:d)
robot_fleet_telemetry | Streaming and querying telemetry, faults and maintenance tickets for mixed robot fleets. | telemetry_stream(robot_name, metric=battery|temperature|joint_torque|position|velocity, sample_rate_hz, retention_days:i[1..365]) fault(robot_name, fault_code, severity=info|warning|critical, raised_at, acknowledged:b) maintenance_ticket(robot_name, component, due_date, status=open|scheduled|done)
# healthcare | Healthcare | Clinical and patient-facing healthcare: appointments, health records, prescriptions, labs, billing and care coordination.
patient_scheduling | Booking, rescheduling and cancelling patient appointments with clinicians, exam rooms and waitlists. | appointment(patient_name, clinician_name, visit_type=new_patient|follow_up|telehealth|procedure, start_at, duration_minutes, status=booked|checked_in|completed|cancelled|no_show) waitlist_entry(patient_name, preferred_days[], urgency=routine|soon|urgent, added_at) clinic_room(name, room_type=exam|procedure|imaging, is_available)
electronic_health_records | Reading and updating patient charts in an EHR: demographics, allergies, vital signs and clinical notes. | patient(first_name, last_name, birth_date, sex=female|male|other|unknown, mrn, primary_language) allergy(substance, reaction, severity=mild|moderate|severe, recorded_on) vital_sign(vital_type=heart_rate|blood_pressure|temperature|respiratory_rate|spo2, value:n, unit, measured_at) clinical_note(note_type=progress|discharge|consult|h_and_p, body, author_email, signed_at)
e_prescribing | Writing, renewing and routing prescriptions to pharmacies with dosage and drug interaction checks. | prescription(drug_name, dose_mg, route=oral|iv|im|topical|inhaled, frequency=once_daily|twice_daily|every_8_hours|as_needed, refills:i[0..12], pharmacy_name, status=draft|sent|filled|cancelled) pharmacy(name, phone, address, accepts_eprescribe:b) interaction_check(drug_names[], severity_threshold=minor|moderate|major, checked_at)
lab_orders | Ordering laboratory tests, tracking specimens and reviewing lab results against reference ranges. | lab_order(test_code, priority=routine|stat|asap, fasting_required:b, ordered_at, ordering_clinician, status=ordered|collected|resulted|cancelled) specimen(specimen_type=blood|urine|swab|tissue|saliva, collected_at, barcode, status=collected|in_transit|received|rejected) lab_result(test_code, value:n, unit, reference_low:n, reference_high:n, abnormal_flag=normal|low|high|critical)
telehealth | Running virtual visits: video consultations, intake questionnaires and secure patient messages. | video_visit(patient_email, clinician_email, start_at, platform=zoom|webrtc|teams, status=scheduled|waiting|live|ended|cancelled) intake_form(chief_complaint, symptom_onset_date, pain_level:i[0..10], submitted_at) secure_message(subject, body, is_urgent, sent_at)
medical_billing | Submitting insurance claims with procedure codes, checking eligibility and tracking patient balances. | insurance_claim(payer_name, cpt_codes[], icd10_codes[], billed_amount, service_date, status=draft|submitted|accepted|denied|paid) patient_statement(patient_name, balance, due_date, delivery=mail|email|portal) eligibility_check(member_id:s, payer_name, service_type=office_visit|imaging|surgery|therapy, checked_at)
care_coordination | Coordinating specialist referrals, care plans, care teams and transitions between providers. | referral(specialty=cardiology|dermatology|orthopedics|neurology|oncology|psychiatry, reason, urgency=routine|urgent|emergent, referred_at, status=sent|accepted|scheduled|completed|declined) care_plan(condition, goals[], review_date, status=active|on_hold|completed) care_team_member(name, role=physician|nurse|pharmacist|social_worker|dietitian, email)
pharmacy_operations | Running a retail pharmacy: medication stock, dispensing records and refill requests. | medication_stock(drug_name, ndc_code, quantity_on_hand:i[0..], reorder_point:i[0..], expiry_date) dispense_record(prescription_number, quantity, dispensed_at, pharmacist_name) refill_request(prescription_number, requested_via=phone|app|fax|walk_in, status=pending|approved|denied|ready, requested_at)
mental_health | Supporting mental health care: therapy sessions, mood journals and standardised screening assessments. | therapy_session(therapist_name, modality=cbt|dbt|psychodynamic|emdr|group, start_at, duration_minutes, is_virtual, status=scheduled|completed|cancelled) mood_entry(mood_score:i[1..10], emotions[], sleep_hours:n[0..24], logged_at) screening(instrument=phq9|gad7|pcl5|audit, total_score:i[0..100], administered_on)
hospital_operations | Managing hospital beds, inpatient admissions and ward staff shift assignments. | bed(ward, bed_number, bed_type=icu|general|pediatric|maternity|isolation, status=available|occupied|cleaning|blocked) admission(patient_name, admitting_diagnosis, ward, admitted_at, expected_discharge_date, status=admitted|transferred|discharged) staff_shift(staff_email, role=nurse|physician|technician|porter, start_at, end_at, ward)
# logistics | Logistics and supply chain | Moving and storing goods: parcels, warehouses, fleets, freight, customs, procurement and last-mile delivery.
parcel_shipping | Creating parcel shipments and labels, comparing carrier services and tracking packages. | shipment(carrier=ups|fedex|dhl|usps|royal_mail, service_level=ground|express|overnight|economy, weight_kg, recipient_name, destination_address, ship_date, status=created|in_transit|delivered|returned|cancelled) shipping_label(format=pdf|zpl|png, size=4x6|a4|letter, created_at) tracking_event(status=label_created|in_transit|out_for_delivery|delivered|exception, location, occurred_at)
warehouse_management | Running warehouses: inventory bin locations, inbound receiving, picking waves and cycle counts. | inventory_item(sku, description, bin_location, quantity_on_hand:i[0..], reorder_point:i[0..]) inbound_receipt(supplier_name, expected_at, dock_door:i[1..200], status=expected|arrived|receiving|closed) pick_wave(order_count, zone, release_at, status=planned|released|picking|completed) cycle_count(bin_location, counted_quantity:i[0..], variance:i, counted_at)
fleet_management | Managing delivery vehicles, drivers, route plans and fuel logs for a transport fleet. | vehicle(plate_number, vehicle_type=van|truck|cargo_bike|car, capacity_kg, odometer_km, status=active|in_shop|retired) driver(name, license_number, phone, license_expiry_date) route_plan(stops[]{address, time_window_start:t, time_window_end:t}, planned_date, optimize_for=time|distance|fuel) fuel_log(liters:n[0..2000], cost, odometer_km, filled_at)
freight_forwarding | Booking ocean and air freight, containers and freight quotes between ports. | freight_booking(mode=ocean_fcl|ocean_lcl|air|rail, origin_port, destination_port, cargo_ready_date, incoterm=exw|fob|cif|dap|ddp, status=requested|confirmed|in_transit|delivered|cancelled) container(container_number, container_type=20gp|40gp|40hc|reefer, seal_number, gross_weight_kg) freight_quote(mode=ocean_fcl|ocean_lcl|air|rail, total_cost, currency, valid_until:d, transit_days:i[1..90])
customs_compliance | Preparing customs declarations, HS tariff classifications and export licences. | customs_declaration(declaration_type=import|export|transit, hs_codes[], declared_value, currency, origin_country, status=draft|lodged|cleared|held) tariff_classification(product_description, hs_code, duty_rate_pct, confidence_pct) export_license(license_number, destination_country, valid_until:d, controlled_items[])
last_mile_delivery | Dispatching last-mile deliveries to couriers with delivery windows and proof of delivery. | delivery(recipient_name, address, window_start_at, window_end_at, status=pending|assigned|out_for_delivery|delivered|failed, signature_required:b) proof_of_delivery(photo_url, signed_by, delivered_at, latitude, longitude) courier(name, vehicle_type=bike|scooter|car|van|on_foot, phone, is_on_shift)
procurement | Purchasing from suppliers: requisitions, purchase orders and supplier records. | purchase_order(supplier_name, currency, lines[]{sku, quantity, unit_price}, expected_delivery_date, status=draft|sent|acknowledged|received|closed) requisition(title, requested_by_email, budget_code, total_amount, status=draft|pending_approval|approved|rejected) supplier(name, country, email, rating, is_preferred)
inventory_planning | Forecasting demand, setting safety stock policies and generating replenishment orders across locations. | demand_forecast(sku, location, horizon_weeks:i[1..104], forecast_units:i[0..], method=moving_average|exponential_smoothing|arima|ml) safety_stock_policy(sku, service_level_pct, lead_time_days, review_period_days:i[1..90]) replenishment_order(sku, quantity, from_location, to_location, needed_by:d, status=proposed|released|shipped|received)
cold_chain | Monitoring temperature-controlled shipments with data loggers, excursions and compliance reports. | temperature_logger(serial_number, min_temp_c:n, max_temp_c:n, interval_minutes, battery_pct) excursion(shipment_reference, peak_temp_c:n, duration_minutes, detected_at, disposition=accept|quarantine|destroy) compliance_report(period_start:d, period_end:d, standard=gdp|haccp|fsma, generated_at)
returns_management | Processing product returns: return authorisations, inspections, restocking and refunds. | return_authorization(order_number, reason=damaged|wrong_item|not_as_described|no_longer_needed|defective, items_count, status=requested|approved|received|rejected|refunded, requested_at) return_inspection(condition=new|like_new|used|damaged|unsellable, inspector_name, notes, inspected_at) restock_action(sku, quantity, destination=shelf|refurbish|liquidate|recycle)
# ecommerce | E-commerce | Selling online: catalogues, carts, orders, promotions, reviews, subscriptions and marketplace operations.
product_catalog | Managing online store products, variants, prices, categories and stock levels. | product(title, description, brand, price, currency, status=active|draft|archived, tags[]) variant(sku, size=xs|s|m|l|xl|xxl, color:s, price, stock_quantity:i[0..]) product_category(name, parent_name, sort_order:i[0..], is_visible)
shopping_cart | Building shopping carts: adding items, applying coupons and estimating shipping and tax. | cart(customer_email, currency, items[]{sku, quantity}, updated_at) coupon_application(coupon_code, discount_amount, applied_at) shipping_estimate(postal_code:s, country, method=standard|express|pickup, estimated_days:i[0..60])
order_management | Viewing and managing customer orders, fulfilments, cancellations and order notes. | customer_order(order_number, customer_email, total_amount, currency, status=pending|paid|fulfilled|shipped|cancelled|refunded, placed_at) fulfillment(tracking_number, carrier=ups|fedex|dhl|usps|local_courier, shipped_at, items_count) order_note(body, is_customer_visible:b, created_at)
promotions | Running discount codes, flash sales and loyalty rewards for an online shop. | discount_code(code:s, discount_type=percentage|fixed_amount|free_shipping, value:n[0..], usage_limit:i[1..1000000], starts_at, ends_at) flash_sale(name, product_skus[], discount_pct, start_at, end_at, status=scheduled|live|ended) loyalty_reward(name, points_cost:i[1..1000000], reward_type=discount|free_item|free_shipping, is_active)
product_reviews | Collecting, moderating and answering customer product reviews and product questions. | review(product_sku, rating:i[1..5], title, body, verified_purchase:b, submitted_at, status=pending|published|rejected) product_question(product_sku, question, asked_at, is_answered) review_response(body, responder_name, is_public)
marketplace_seller | Operating as a marketplace seller: listings, marketplace fees and seller performance metrics. | listing(title, marketplace=amazon|ebay|etsy|walmart|mercado_libre, price, quantity:i[0..], condition=new|used|refurbished, status=active|inactive|suppressed) seller_fee(fee_type=referral|fulfillment|storage|advertising, amount, period_month:s) performance_metric(metric=late_shipment_rate|cancellation_rate|defect_rate|response_time, value:n[0..], target:n[0..], measured_on)
subscription_commerce | Managing recurring product subscriptions: plans, renewals, pauses and failed-payment dunning. | subscription_plan(name, price, currency, billing_interval=weekly|monthly|quarterly|yearly, trial_days:i[0..90]) customer_subscription(customer_email, plan_name, status=trialing|active|paused|past_due|canceled, next_billing_date, quantity) dunning_attempt(attempt_number:i[1..10], scheduled_at, outcome=pending|succeeded|failed)
store_customer_support | Handling online store customer support tickets, canned reply macros and satisfaction surveys. | support_ticket(subject, description, priority, channel=email|chat|phone|social, status=new|open|pending|solved|closed, requester_email) macro(name, body, tags[], is_shared) satisfaction_survey(score:i[1..5], comment, responded_at)
dropshipping | Sourcing dropship products from suppliers, pricing rules and routing orders to suppliers for fulfilment. | supplier_product(supplier_sku, title, cost_price, shipping_days:i[1..60], stock_quantity:i[0..]) price_rule(markup_pct, rounding=none|x99|x95|whole, min_margin_amount) routed_order(order_number, supplier_name, status=queued|sent|confirmed|shipped|failed, routed_at)
gift_cards | Issuing, redeeming and reloading store gift cards and checking their balances. | gift_card(code:s, initial_balance, currency, expires_on, recipient_email, is_digital) redemption(amount, order_number, redeemed_at) gift_card_batch(name, card_count:i[1..100000], denomination:n[0..], purpose=promotion|corporate|retail)
# travel | Travel and hospitality | Planning and booking trips: flights, hotels, car rentals, itineraries, loyalty programmes and travel documents.
flight_booking | Searching, booking and changing airline flights, seats and passenger details. | flight_offer(origin_airport, destination_airport, departure_date, cabin_class=economy|premium_economy|business|first, passengers:i[1..9], max_stops:i[0..3]) air_booking(booking_reference, passenger_names[], fare_amount, currency, status=held|ticketed|changed|cancelled) seat_assignment(flight_number, seat_number, seat_type=window|aisle|middle|exit_row)
hotel_reservations | Finding and booking hotel rooms, rate plans, guest requests and cancellations. | hotel(name, city, star_rating:i[1..5], nightly_price, amenities[]) reservation(hotel_name, room_type=single|double|twin|suite|family, check_in_date, check_out_date, guest_email, status=confirmed|checked_in|checked_out|cancelled) guest_request(request_type=late_checkout|extra_bed|airport_pickup|crib|early_checkin, notes, requested_at)
car_rental | Renting cars: vehicle availability, rental bookings, extras and pick-up and drop-off locations. | rental_car(vehicle_class=economy|compact|midsize|suv|van|luxury, transmission=automatic|manual, daily_rate, seats:i[2..9]) rental_booking(pickup_location, dropoff_location, pickup_at, return_at, driver_age:i[18..99], status=reserved|picked_up|returned|cancelled) rental_extra(extra_type=gps|child_seat|additional_driver|full_insurance, daily_price, max_quantity:i[1..4])
itinerary_planning | Composing multi-day trip itineraries with activities, transfers and shared travel plans. | itinerary(title, destination, start_date, end_date, traveler_count:i[1..50], budget) itinerary_activity(name, day_number:i[1..60], start_time, duration_minutes, category=sightseeing|food|museum|outdoor|nightlife|shopping) transfer(transfer_type=taxi|shuttle|train|ferry|private_driver, pickup_at, from_location, to_location)
corporate_travel | Managing business travel: trip requests, travel policy compliance, approvals and traveller alerts. | trip_request(traveler_email, purpose, destination_city, depart_date, return_date, estimated_cost, status=draft|pending_approval|approved|rejected|booked) travel_policy(name, max_hotel_rate, allowed_cabin=economy|premium_economy|business, advance_booking_days:i[0..60]) traveler_alert(alert_type=weather|security|strike|health, country, severity=low|medium|high, issued_at)
loyalty_programs | Tracking airline and hotel loyalty accounts, points, status tiers and award redemptions. | loyalty_account(program_name, member_number, tier=base|silver|gold|platinum, points_balance:i[0..], tier_expires_on) points_transaction(points:i, transaction_type=earn|redeem|transfer|expire, description, posted_at) award_redemption(award_type=flight|hotel_night|upgrade|gift_card, points_cost:i[1..10000000], redeemed_at)
vacation_rentals | Listing and booking vacation homes: availability calendars, stays and owner blocks. | rental_listing(title, city, bedrooms:i[0..20], nightly_price, max_guests:i[1..30], instant_book:b) stay_booking(guest_email, check_in_date, check_out_date, guests:i[1..30], total_price, status=inquiry|confirmed|cancelled|completed) availability_block(start_date, end_date, reason=owner_use|maintenance|booked_elsewhere)
rail_and_bus | Searching and booking train and coach journeys, tickets and travel passes. | journey(origin_station, destination_station, departure_at, operator, travel_class=standard|first|sleeper) rail_ticket(fare_type=advance|off_peak|anytime|flexible, passenger_count:i[1..9], price, is_refundable) travel_pass(pass_type=day|weekly|monthly|interrail|eurail, valid_from:d, valid_days:i[1..366], holder_name)
cruise_booking | Booking cruises: sailings, cabin bookings and shore excursions. | sailing(ship_name, departure_port, departure_date, nights:i[1..120], region=caribbean|mediterranean|alaska|northern_europe|asia) cabin_booking(cabin_category=inside|oceanview|balcony|suite, guests:i[1..6], total_price, status=held|booked|cancelled) shore_excursion(port, title, duration_hours:n[0..24], price, activity_level=easy|moderate|strenuous)
visa_and_documents | Checking entry requirements and preparing visa applications, passports and travel documents. | visa_application(destination_country, visa_type=tourist|business|student|transit|work, travel_date, passport_number, status=draft|submitted|approved|refused) entry_requirement(nationality_country, destination_country, stay_days:i[1..365], requires_visa:b) travel_document(document_type=passport|id_card|residence_permit|vaccination_certificate, expiry_date, issuing_country)
# education | Education | Teaching and learning: courses, assignments, grading, tutoring, exams, admissions, libraries and school administration.
learning_management | Running online courses in a learning management system: course modules, enrolments and progress. | course(title, course_code, instructor_email, start_date, max_students:i[1..10000], is_published) course_module(title, position:i[1..200], estimated_minutes, is_locked) enrollment(student_email, enrolled_at, progress_pct, status=active|completed|dropped)
assignments_grading | Publishing assignments, collecting student submissions and grading them with rubric feedback. | assignment(title, instructions, due_at, max_points:i[1..1000], submission_type=file|text|url|quiz) submission(student_email, submitted_at, file_url, is_late) grade(points:n[0..1000], feedback, graded_at, rubric_level=excellent|proficient|developing|beginning)
student_information | Managing student records, class attendance and guardian contacts in a school information system. | student(first_name, last_name, grade_level:i[0..12], birth_date, homeroom) attendance_record(date, status=present|absent|tardy|excused, period:i[1..10], note) guardian(name, relationship=mother|father|guardian|grandparent|other, email, phone)
tutoring | Matching students with tutors, booking tutoring sessions and tracking learning goals. | tutor(name, subjects[], hourly_rate, rating, languages[]) tutoring_session(subject=math|physics|chemistry|english|history|coding, start_at, duration_minutes, mode=online|in_person, status=booked|completed|cancelled) learning_goal(description, target_date, progress_pct, status=active|achieved|abandoned)
exams_proctoring | Scheduling exams, maintaining question banks and reviewing online proctoring flags. | exam(title, start_at, duration_minutes, pass_mark_pct, is_proctored, status=draft|scheduled|open|closed) question(stem, question_type=multiple_choice|true_false|short_answer|essay, difficulty=easy|medium|hard, points:i[1..100]) proctoring_flag(flag_type=face_not_visible|multiple_faces|tab_switch|noise|phone_detected, flagged_at, reviewed:b)
language_learning | Practising a foreign language with graded lessons, vocabulary flashcards and speaking exercises. | lesson(language, level=a1|a2|b1|b2|c1|c2, topic, xp_reward:i[1..100]) vocabulary_card(term, translation, example_sentence, next_review_at, ease_factor:n[1.3..3]) speaking_exercise(prompt_text, accuracy_pct, recorded_at)
university_admissions | Handling university applications, supporting documents, interviews and admission decisions. | application(program_name, intake_term=fall|spring|summer, gpa:n[0..4], test_score:i[0..1600], submitted_at, status=draft|submitted|under_review|admitted|rejected|waitlisted) application_document(document_type=transcript|recommendation|essay|cv|test_report, file_url, uploaded_at, verified:b) admission_interview(interviewer_email, scheduled_at, format=video|phone|in_person, score:i[1..10])
library_services | Searching library catalogues, borrowing and renewing loans and placing holds on items. | catalog_record(title, author, isbn, publication_year:i[1000..2100], format=book|ebook|audiobook|dvd|journal) library_loan(borrowed_on, due_date, renewals:i[0..5], status=active|returned|overdue|lost) hold(pickup_branch, placed_at, expires_on, queue_position:i[1..])
school_administration | Running school operations: timetables, school events and parent notices. | timetable_slot(class_name, subject, teacher_email, weekday=monday|tuesday|wednesday|thursday|friday, start_time, room) school_event(title, event_date, audience=students|parents|staff|everyone, location) parent_notice(subject, body, send_at, requires_acknowledgement:b)
continuing_education | Offering professional certificate programmes, issued credentials and continuing education credits. | certificate_program(title, provider, credit_hours:n[0..200], price, delivery=online|hybrid|in_person) credential(holder_email, issued_on, expires_on, verification_url) ce_credit(activity_title, credits:n[0..100], completed_on, category=ethics|technical|leadership|compliance)
# smart_home | Smart home | Controlling connected home devices: lighting, climate, security, energy, appliances, automations and media.
lighting_control | Switching and dimming smart lights, lighting scenes and light schedules in rooms and zones. | light(name, room, brightness_pct, color_temperature_k:i[1500..9000], is_on) lighting_scene(name, rooms[], transition_seconds:i[0..600]) light_schedule(name, trigger_time, days[], action=on|off|dim|scene, is_enabled)
climate_control | Setting thermostats, HVAC modes, temperature schedules and indoor air quality targets. | thermostat(name, mode=heat|cool|auto|off|eco, target_temp_c:n[5..35], fan_mode=auto|on|circulate, humidity_pct) temperature_schedule(weekday=monday|tuesday|wednesday|thursday|friday|saturday|sunday, start_time, target_temp_c:n[5..35]) air_quality_sensor(room, pm25_ugm3:n[0..1000], co2_ppm, last_reading_at)
home_security | Arming home alarm systems and managing door locks, security cameras and guest access codes. | alarm_system(mode=disarmed|armed_home|armed_away|armed_night, entry_delay_seconds:i[0..300], siren_enabled) door_lock(name, is_locked, battery_pct, auto_lock_minutes:i[0..60]) security_camera(name, resolution=720p|1080p|2k|4k, motion_detection_enabled, recording_mode=continuous|motion|off) access_code(label, code:s, valid_from:dt, valid_until:dt)
home_energy | Monitoring household energy use, home batteries and EV charging at home. | energy_meter(name, consumption_kwh, period=hour|day|week|month, measured_at) home_battery(capacity_kwh, state_of_charge_pct, mode=self_consumption|backup|time_of_use) ev_charger(name, max_current_a:i[6..80], charging_schedule_start, is_charging)
appliances | Operating connected kitchen and laundry appliances: washer cycles, ovens and fridges. | washer_cycle(program=cotton|synthetics|wool|quick|eco, temperature_c:i[20..90], spin_rpm:i[400..1600], start_at, delay_minutes, status=scheduled|running|finished|cancelled) oven(mode=bake|grill|fan|steam|defrost, target_temp_c:i[30..300], timer_minutes, preheat_enabled) fridge(name, fridge_temp_c:n[1..8], freezer_temp_c:n[-24..-14], door_alarm_enabled)
home_automation | Building home automation routines that connect triggers, conditions and device actions. | automation(name, trigger_type=time|device_state|sunrise|sunset|geofence|voice, is_enabled, last_triggered_at) automation_action(device_name, command=turn_on|turn_off|set_level|lock|unlock|notify, value:s, delay_seconds:i[0..3600]) automation_condition(condition_type=time_range|device_state|presence|weather, operator=equals|above|below|between, value:s)
voice_assistant | Configuring voice assistant routines, timers and shared shopping lists. | voice_routine(phrase, actions[], language, is_enabled) timer(label, duration_seconds:i[1..86400], device_name, started_at) shopping_list_item(name, quantity, aisle, is_checked)
irrigation_garden | Watering gardens with smart irrigation controllers: zones, watering schedules and rain delays. | irrigation_zone(name, plant_type=lawn|shrubs|vegetables|flowers|trees, sprinkler_type=rotor|spray|drip, flow_rate_lpm:n[0..200]) watering_schedule(zone_name, start_time, duration_minutes, days[], is_enabled) rain_delay(delay_hours:i[1..168], reason=rain_forecast|freeze|manual, starts_at)
home_entertainment | Controlling TVs, speakers and multi-room audio: playback, inputs, volume and speaker groups. | media_player(name, room, volume_pct, input_source=hdmi1|hdmi2|tv|bluetooth|streaming, is_playing) speaker_group(name, speakers[], sync_enabled) playback_queue(source=spotify|apple_music|youtube|radio|podcast, track_uri:s, shuffle:b, repeat_mode=off|one|all)
pet_and_baby_monitoring | Watching over pets and babies with connected feeders, baby monitors and sleep tracking. | pet_feeder(name, portion_grams:i[5..500], feeding_times[], food_level_pct) baby_monitor(name, sound_sensitivity=low|medium|high, night_vision:b, room_temp_c:n) sleep_session(started_at, ended_at, wake_count:i[0..50], quality=poor|fair|good|great)
# legal | Legal | Legal work: contracts, e-signature, client matters, e-discovery, compliance, intellectual property, court filings and billing.
contract_management | Drafting, negotiating, signing and renewing commercial contracts, their clauses and obligations. | contract(title, counterparty, contract_type=nda|msa|sow|employment|lease|license, effective_date, expiration_date, value_amount, status=draft|in_review|signed|expired|terminated) clause(heading, text, risk_level=low|medium|high, is_standard) obligation(description, owner_email, due_date, status=open|done|overdue)
e_signature | Sending documents for electronic signature with signer routing, reminders and audit trails. | envelope(subject, message, expires_at, signing_order=parallel|sequential, status=draft|sent|completed|declined|voided) signer(name, email, role=signer|approver|viewer|witness, routing_order:i[1..20]) audit_event(event_type=sent|viewed|signed|declined|reminded, actor_email, occurred_at, ip_address)
legal_matters | Managing client matters and cases: court deadlines and billable time entries. | matter(title, client_name, practice_area=litigation|corporate|ip|employment|real_estate|tax, opened_on, status=open|pending|closed, lead_attorney_email) court_deadline(description, due_date, jurisdiction, is_critical) time_entry(hours:n[0..24], activity_code, narrative, billable:b, worked_on)
ediscovery | Collecting, searching, tagging and producing electronic documents for litigation review. | custodian(name, email, department, hold_status=pending|acknowledged|released) review_document(file_name, doc_date:d, responsiveness=responsive|not_responsive|needs_review, privilege=none|attorney_client|work_product) production_set(name, bates_prefix, document_count, produced_on)
regulatory_compliance | Tracking regulatory controls, audit findings and employee policy attestations. | control(name, framework=sox|gdpr|hipaa|iso27001|soc2|pci_dss, owner_email, test_frequency=monthly|quarterly|annually, status=effective|deficient|not_tested) audit_finding(title, severity=low|medium|high|critical, remediation_due_date, status=open|remediating|closed) policy_attestation(policy_name, employee_email, attested_at, version)
intellectual_property | Filing and maintaining patents and trademarks, renewals and infringement watches. | patent_application(title, jurisdiction=us|ep|cn|jp|kr|pct, filing_date, inventor_names[], status=drafting|filed|examination|granted|abandoned) trademark(mark_text, nice_classes[]:i, jurisdiction=us|eu|uk|cn|jp, renewal_date) infringement_watch(keyword, similarity_threshold_pct, notify_email)
court_filings | Preparing and e-filing court documents, reading dockets and scheduling hearings. | filing(case_number, document_type=complaint|motion|brief|answer|notice, court, filed_at, fee_amount) docket_entry(case_number, entry_number:i[1..], description, entered_on) hearing(case_number, hearing_type=motion|status|trial|sentencing, scheduled_at, courtroom, judge_name)
legal_billing | Billing clients for legal work: timekeeper rates, legal invoices and client trust accounts. | billing_rate(timekeeper_email, hourly_rate, currency, effective_date) legal_invoice(client_name, matter_title, total_amount, issued_on, status=draft|sent|paid|partially_paid|written_off) trust_transaction(client_name, amount:n, transaction_type=deposit|disbursement|transfer, memo, posted_on)
privacy_requests | Handling data subject requests, consent records and records of processing under privacy law. | data_subject_request(request_type=access|deletion|correction|portability|opt_out, requester_email, received_at, due_date, status=received|verifying|in_progress|completed|rejected) consent_record(subject_email, purpose=marketing|analytics|personalization|third_party_sharing, granted:b, recorded_at) processing_activity(name, legal_basis=consent|contract|legal_obligation|legitimate_interest, data_categories[], retention_months:i[1..240])
corporate_governance | Managing board meetings, board resolutions and shareholder registers. | board_meeting(title, scheduled_at, location, quorum:i[1..50], status=planned|held|cancelled) resolution(title, text, resolution_type=ordinary|special|written, votes_for:i[0..], votes_against:i[0..]) shareholder(name, email, share_class=common|preferred_a|preferred_b, shares:i[1..])
# human_resources | Human resources | People operations: recruiting, onboarding, payroll, time off, performance, benefits, scheduling and learning.
recruiting | Running hiring pipelines: job postings, candidates, interviews and offers. | job_posting(title, department, location, employment_type=full_time|part_time|contract|internship, salary_min:n[0..], salary_max:n[0..], status=draft|open|closed) candidate(first_name, last_name, email, resume_url, source=referral|job_board|linkedin|agency|career_site, stage=applied|screen|interview|offer|hired|rejected) interview(interviewer_email, scheduled_at, interview_type=phone|technical|onsite|panel|culture, score:i[1..5])
onboarding | Onboarding new hires: onboarding checklists, equipment requests and first-week tasks. | new_hire(full_name, email, start_date, department, manager_email) onboarding_task(title, owner_email, due_date, category=it|hr|facilities|training, is_done:b) equipment_request(item=laptop|monitor|phone|headset|badge, model, ship_to_address, requested_at, status=requested|approved|shipped|delivered)
payroll | Running payroll: pay runs, payslips, deductions and bonuses. | pay_run(period_start:d, period_end:d, pay_date, status=draft|approved|processed|paid) payslip(employee_email, gross_pay, net_pay, tax_withheld:n[0..], pay_date) deduction(deduction_type=pension|health_insurance|union_dues|garnishment|loan, amount, is_pre_tax, recurring:b) bonus(employee_email, amount, bonus_type=performance|signing|referral|retention, payout_date)
time_off | Requesting and approving vacation and leave, leave balances and public holidays. | leave_request(employee_email, leave_type=vacation|sick|parental|bereavement|unpaid, start_date, end_date, status=pending|approved|rejected|cancelled) leave_balance(leave_type=vacation|sick|parental, available_days:n[0..365], accrual_rate_days:n[0..5]) public_holiday(name, date, country)
performance_reviews | Running performance review cycles, employee goals and peer feedback. | review_cycle(name, start_date, end_date, review_type=annual|mid_year|probation|project, status=draft|active|calibrating|closed) goal(title, owner_email, weight_pct, due_date, status=on_track|at_risk|off_track|achieved) peer_feedback(reviewer_email, reviewee_email, strengths, improvements, submitted_at)
benefits_administration | Enrolling employees in health, retirement and other benefit plans and managing dependants. | benefit_plan(name, plan_type=medical|dental|vision|retirement|life|commuter, employer_contribution_pct, monthly_premium) benefit_enrollment(employee_email, plan_name, coverage_level=employee|employee_spouse|employee_children|family, effective_date, status=pending|active|terminated) dependent(full_name, relationship=spouse|child|domestic_partner, birth_date)
workforce_scheduling | Building shift schedules, shift swaps and employee availability for hourly teams. | shift(location, role=cashier|cook|nurse|driver|associate|supervisor, start_at, end_at, assigned_email) shift_swap(from_email, to_email, reason, status=requested|accepted|approved|denied) availability(employee_email, weekday=monday|tuesday|wednesday|thursday|friday|saturday|sunday, start_time, end_time)
employee_directory | Looking up employees, teams, offices and contact details in the company directory. | employee(full_name, email, title, department, manager_email, office_location, hire_date) team(name, lead_email, member_count, slack_channel) office(name, city, country, capacity:i[1..100000], timezone)
learning_development | Assigning staff training courses, tracking completions and recording employee skills. | training_course(title, provider, duration_hours:n[0..500], is_mandatory, format=video|live|in_person|reading) training_assignment(employee_email, course_title, due_date, status=assigned|in_progress|completed|overdue) skill(name, level=beginner|intermediate|advanced|expert, verified:b)
employee_relations | Handling workplace cases: grievances, investigation notes and exit interviews. | er_case(case_type=grievance|harassment|misconduct|accommodation|policy_question, reported_at, confidentiality=standard|restricted, status=open|investigating|resolved|closed) investigation_note(body, author_email, created_at) exit_interview(employee_email, last_day:d, reason=compensation|career|manager|relocation|personal|other, would_return:b)
# marketing | Marketing | Acquiring and engaging customers: email campaigns, paid ads, social media, SEO, analytics, content and events.
email_marketing | Sending email campaigns to subscriber lists and audience segments. | email_campaign(name, subject_line, from_email, send_at, status=draft|scheduled|sending|sent|paused) subscriber(email, first_name, status=subscribed|unsubscribed|bounced|cleaned, tags[]) audience_segment(name, rule_json, member_count)
paid_advertising | Managing paid ad campaigns, ad groups, creatives, bids and budgets across ad networks. | ad_campaign(name, platform=google_ads|meta_ads|linkedin_ads|tiktok_ads|microsoft_ads, objective=awareness|traffic|leads|sales|app_installs, daily_budget, start_date, status=active|paused|ended) ad_group(name, bid_strategy=manual_cpc|target_cpa|target_roas|maximize_clicks, max_cpc_bid, keywords[]) ad_creative(headline, body_text, image_url, call_to_action=shop_now|learn_more|sign_up|download|contact_us)
social_media | Scheduling social media posts, monitoring brand mentions and reporting engagement. | social_post(network=x|facebook|instagram|linkedin|tiktok|threads, text, media_urls[], scheduled_at, status=draft|scheduled|published|failed) mention(author_handle, text, sentiment=positive|neutral|negative, posted_at) engagement_report(network=x|facebook|instagram|linkedin|tiktok|threads, period_start:d, period_end:d, impressions:i[0..], engagement_rate_pct)
seo | Improving search engine rankings: keyword tracking, site audits and backlinks. | tracked_keyword(keyword, search_engine=google|bing|yandex|baidu, country, current_rank:i[1..100], target_url) site_audit(domain_name, pages_crawled:i[0..], issues_count, started_at, status=queued|crawling|completed|failed) backlink(source_url, anchor_text, domain_rating:i[0..100], first_seen_at, is_dofollow)
marketing_analytics | Analysing marketing performance: attribution reports, conversion funnels and UTM-tagged links. | attribution_report(model=last_click|first_click|linear|time_decay|data_driven, start_date, end_date, channel) funnel(name, steps[], conversion_window_days:i[1..90]) utm_link(destination_url, utm_source, utm_medium, utm_campaign)
content_marketing | Planning and publishing blog articles through content calendars and editorial review. | article(title, slug, body, author_email, status=idea|draft|in_review|scheduled|published, publish_at) content_calendar(name, month, channel=blog|newsletter|social|video) editorial_comment(body, author_email, resolved:b)
event_marketing | Organising marketing events and webinars: registrations, speakers and check-ins. | marketing_event(name, event_type=webinar|conference|meetup|trade_show|workshop, start_at, venue, capacity:i[1..100000], status=draft|published|cancelled) registration(attendee_email, ticket_type=free|standard|vip|speaker, registered_at, checked_in:b) speaker(name, bio, company, session_title)
influencer_marketing | Finding social media influencers, negotiating collaborations and tracking sponsored posts. | influencer(handle, network=instagram|tiktok|youtube|twitch|x, followers:i[0..], engagement_rate_pct, niche=beauty|fitness|gaming|tech|food|travel) collaboration(influencer_handle, fee, deliverables[], deadline:d, status=proposed|negotiating|contracted|live|completed) sponsored_post(post_url, reach:i[0..], clicks:i[0..], posted_at)
customer_surveys | Designing customer surveys and NPS programmes, distributing them and analysing responses. | survey(title, survey_type=nps|csat|ces|market_research|product_feedback, channel=email|in_app|sms|web, closes_at, status=draft|open|closed) survey_question(text, question_type=rating|multiple_choice|open_text|ranking, is_required:b, position:i[1..100]) survey_response(respondent_email, nps_score:i[0..10], comment, submitted_at)
affiliate_programs | Running affiliate and referral programmes: partners, tracking links and commissions. | affiliate(name, email, website_url, commission_pct, status=pending|approved|suspended) referral_link(affiliate_email, destination_url, code:s, clicks:i[0..]) commission(order_number, amount, status=pending|approved|paid|reversed, earned_at)
# media_entertainment | Media and entertainment | Creating, publishing and consuming media: video and music streaming, podcasts, news, ticketing, photos and books.
video_streaming | Browsing and playing films and series, viewer profiles and watch history on a streaming service. | show(name, show_type=movie|series|documentary|special, genre=drama|comedy|action|thriller|documentary|animation, release_year:i[1900..2100], maturity_rating=g|pg|pg-13|r|tv-ma) viewer_profile(name, language, is_kids_profile, autoplay_enabled) watch_history_entry(show_name, watched_at, progress_pct, device_type=tv|mobile|web|console)
music_streaming | Searching music, managing playlists and controlling listening sessions on a music streaming service. | track(title, artist, album, duration_seconds, explicit:b, isrc) playlist(name, description, is_collaborative, is_public) listening_session(device_name, volume_pct, shuffle:b, repeat_mode=off|track|context)
podcast_hosting | Publishing podcast shows and episodes and reading listener download analytics. | podcast(title, author, category=news|comedy|education|business|true_crime|technology, language, explicit:b) episode(title, audio_url, duration_seconds, season:i[1..100], episode_number:i[1..10000], publish_at, status=draft|scheduled|published) download_report(period_start:d, period_end:d, downloads:i[0..], top_country)
news_publishing | Writing, editing and publishing news stories, breaking news alerts and corrections. | story(headline, dek, body, section=world|politics|business|tech|sport|culture, byline, status=draft|editing|published|retracted, publish_at) breaking_alert(headline, push_enabled, regions[], sent_at) correction(story_headline, text, issued_at)
video_production | Managing video production projects, media assets and render jobs. | video_project(name, resolution=720p|1080p|4k|8k, frame_rate_fps:i[12..120], due_date) media_asset(file_name, asset_type=footage|audio|graphics|music|subtitle, duration_seconds, size_gb, ingested_at) render_job(preset=h264_1080p|h265_4k|prores|gif|audio_only, priority, status=queued|rendering|done|failed, queued_at)
event_ticketing | Selling tickets for concerts, shows and sports events: seats, ticket sales and transfers. | live_event(name, venue, start_at, category=concert|theatre|sport|comedy|festival, capacity:i[1..200000]) ticket(section, row:s, seat_number, price, status=available|held|sold|transferred|scanned) ticket_transfer(recipient_email, transferred_at, status=pending|accepted|expired)
photo_management | Organising photo libraries: photos, albums and non-destructive photo edits. | photo(file_name, taken_at, camera_model, latitude, longitude, is_favorite) album(title, cover_photo_name, is_shared) photo_edit(preset=auto|vivid|mono|warm|cool, crop_ratio=original|square|4x3|16x9, exposure:n[-5..5])
book_publishing | Publishing books and e-books: manuscripts, editions and author royalty statements. | manuscript(title, author, genre=fiction|nonfiction|romance|mystery|scifi|children, word_count:i[0..], status=submitted|editing|typesetting|ready) edition(isbn, format=hardcover|paperback|ebook|audiobook, list_price, publication_date) royalty_statement(author, period_start:d, period_end:d, units_sold:i[0..], royalty_amount)
radio_broadcasting | Scheduling radio programmes, advertising spots and broadcast logs for a station. | radio_program(name, host_name, start_time, duration_minutes, weekdays[]) ad_spot(advertiser, length_seconds:i[5..120], air_at, spot_type=live_read|produced|sponsorship) broadcast_log(aired_at, item_type=song|ad|talk|news|jingle, title, duration_seconds)
creator_platform | Running a creator membership platform: membership tiers, members and member-only posts. | membership_tier(name, monthly_price, benefits[], member_limit:i[1..100000]) member(email, tier_name, joined_at, status=active|paused|cancelled) creator_post(title, body, visibility=public|members|tier_only, published_at)
# gaming | Gaming | Playing and running games: player accounts, matchmaking, in-game economies, tournaments, servers and moderation.
player_accounts | Managing game player accounts, friend requests and linked gaming platforms. | player(username, email, region=na|eu|asia|oce|sa, level:i[1..1000], is_banned) friend_request(from_username, to_username, status=pending|accepted|declined, sent_at) linked_platform(platform=steam|psn|xbox|nintendo|epic, external_username, linked_at)
matchmaking | Queueing players into matches by skill and region, managing lobbies and match results. | match_ticket(username, game_mode=ranked|casual|arena|battle_royale|coop, region=na|eu|asia|oce|sa, skill_rating:i[0..5000], queued_at) lobby(name, max_players:i[2..100], is_private, map_name) match_result(winner_team=red|blue|draw, duration_seconds, mvp_username, ended_at)
in_game_economy | Managing virtual items, player inventories and player-to-player trades inside a game. | virtual_item(name, rarity=common|uncommon|rare|epic|legendary, item_type=weapon|armor|cosmetic|consumable|material, price_coins:i[0..1000000], tradable:b) player_inventory(username, slots:i[1..500], gold_balance:i[0..]) trade_offer(from_username, to_username, offered_items[], status=open|accepted|declined|expired, expires_at)
esports_tournaments | Organising esports tournaments: brackets, teams and match schedules with prize pools. | tournament(name, game_title, format=single_elimination|double_elimination|round_robin|swiss, start_date, prize_pool:n[0..], max_teams:i[2..512]) esports_team(name, tag, captain_username, roster[], region=na|eu|asia|oce|sa) bracket_match(round:i[1..20], team_a:s, team_b:s, scheduled_at, best_of:i[1..7])
game_servers | Hosting dedicated game servers with mods, backups and player slots. | game_server(name, game=minecraft|valheim|rust|ark|cs2|terraria, region=na|eu|asia|oce|sa, max_players:i[1..200], status=running|stopped|installing|crashed) server_mod(name, mod_version, load_order:i[0..500], is_enabled) server_backup(size_mb, created_at, retention_days:i[1..90], trigger=scheduled|manual|pre_update)
community_moderation | Moderating game communities: player reports, sanctions and chat filters. | player_report(reported_username, category=cheating|harassment|spam|griefing|inappropriate_name, evidence_url, reported_at, status=new|reviewing|actioned|dismissed) sanction(username, sanction_type=warning|mute|suspension|ban, duration_hours:i[0..8760], reason) chat_filter(pattern:s, action=block|mask|flag, is_enabled)
game_analytics | Analysing player behaviour: retention cohorts, telemetry events and A/B tests. | retention_cohort(install_date, day_n:i[1..365], retained_pct, platform=ios|android|pc|console) telemetry_event(event_name, username, properties_json, occurred_at) ab_test(name, variants[], traffic_pct, primary_metric, status=draft|running|concluded)
achievements_quests | Designing achievements, quests and battle pass reward tiers for a live game. | achievement(name, description, points:i[0..1000], is_hidden, rarity_pct) quest(title, objective, reward_xp:i[0..100000], quest_type=daily|weekly|story|event, expires_at) battle_pass_tier(tier_number:i[1..200], reward_name, is_premium)
game_development | Tracking game development: builds, bug reports and playtest sessions. | game_build(version, platform=windows|macos|linux|ios|android|console, branch, size_gb, built_at) bug_report(title, severity=blocker|critical|major|minor|trivial, repro_steps, build_version, status=new|confirmed|fixed|verified|wont_fix) playtest_session(build_version, participants:i[1..500], scheduled_at, survey_url)
tabletop_games | Running tabletop role-playing and board game sessions: campaigns, characters and game nights. | campaign(name, system=dnd5e|pathfinder|call_of_cthulhu|custom, game_master, session_count:i[0..]) character(name, character_class=fighter|wizard|rogue|cleric|ranger|bard, level:i[1..20], hit_points:i[0..999]) game_night(date, location, player_emails[], game_name)
# agriculture | Agriculture | Farming operations: crops, irrigation, livestock, machinery, agronomy, harvest, greenhouses and farm finance.
crop_planning | Planning crops across fields and seasons: plantings, varieties and yield targets. | field(name, area_ha, soil_type=clay|loam|sand|silt|peat, latitude, longitude) planting(crop=wheat|corn|soybean|rice|barley|canola|potato, variety, planted_on, seed_rate_kg_ha:n[0..500]) yield_target(crop=wheat|corn|soybean|rice|barley|canola|potato, season_year:i[2000..2100], target_t_ha:n[0..30])
precision_irrigation | Scheduling field irrigation cycles from soil moisture sensors within seasonal water budgets. | irrigation_cycle(zone, start_at, duration_minutes, water_volume_m3:n[0..10000], status=scheduled|running|completed|skipped) soil_moisture_sensor(name, depth_cm, moisture_pct, last_reading_at) water_budget(season_year:i[2000..2100], allocation_m3:n[0..], used_m3:n[0..])
livestock_management | Tracking farm animals, health treatments, breeding events and weights. | animal(tag_number, species=cattle|sheep|goat|pig|poultry, breed, birth_date, sex=female|male, weight_kg) health_treatment(treatment_type=vaccination|deworming|antibiotic|hoof_care, product_name, dose_ml, withdrawal_days:i[0..120], administered_at) breeding_event(method=natural|artificial_insemination|embryo_transfer, sire_tag, bred_on, expected_due_date)
farm_machinery | Managing tractors and implements: telematics, field operations and service records. | tractor(name, make, engine_hours:n[0..], fuel_level_pct, status=idle|working|transport|service) field_operation(operation_type=tillage|seeding|spraying|fertilizing|harvesting, field_name, started_at, area_covered_ha) service_record(service_type=oil_change|filter|tires|hydraulics|inspection, engine_hours:n[0..], cost, serviced_on)
agronomy_advisory | Scouting fields and issuing agronomic recommendations for pests, diseases and soil nutrients. | scouting_observation(field_name, issue_type=pest|disease|weed|nutrient_deficiency|drought, severity=low|moderate|high, photo_url, observed_at) spray_recommendation(product_name, rate_l_ha:n[0..100], target_pest, pre_harvest_interval_days:i[0..120]) soil_test(field_name, ph:n[3..10], nitrogen_ppm, phosphorus_ppm, potassium_ppm, sampled_on)
harvest_logistics | Coordinating harvest: truck loads, grain storage bins and grain sales contracts. | harvest_load(field_name, crop=wheat|corn|soybean|rice|barley|canola, net_weight_kg, moisture_pct, loaded_at) storage_bin(name, capacity_t:n[0..100000], current_fill_pct, aeration_on:b) grain_sale(buyer, quantity_t:n[0..100000], price_per_t:n[0..], delivery_date, status=contracted|delivered|settled)
greenhouse_control | Controlling greenhouse climate, fertigation recipes and grow light schedules. | greenhouse_zone(name, target_temp_c:n[5..40], target_humidity_pct, co2_setpoint_ppm, vent_mode=auto|open|closed) fertigation_recipe(name, ec_ms_cm:n[0..10], ph:n[4..8], nitrogen_ppm) grow_light_schedule(zone_name, photoperiod_hours:i[0..24], intensity_pct, start_time)
farm_finance | Managing farm finances: input purchases, subsidy claims and crop insurance policies. | input_purchase(input_type=seed|fertilizer|chemical|fuel|feed, supplier, quantity:n[0..], unit_cost, purchased_on) subsidy_claim(scheme_name, claim_amount, submitted_at, status=draft|submitted|approved|paid|rejected) crop_insurance_policy(crop=wheat|corn|soybean|rice|cotton, coverage_level_pct, insured_area_ha, premium)
aquaculture | Running fish and shellfish farms: pens, feeding events and water quality readings. | fish_pen(name, species=salmon|trout|tilapia|shrimp|oyster, stock_count, average_weight_g:n[0..]) feeding_event(pen_name, feed_kg, feed_type, fed_at) water_quality_reading(pen_name, dissolved_oxygen_mg_l:n[0..20], temperature_c:n[-2..40], salinity_ppt:n[0..45], measured_at)
beekeeping | Managing apiaries and beehives: hive inspections, queen status and honey harvests. | hive(name, apiary, hive_type=langstroth|top_bar|warre|flow, colony_strength=weak|moderate|strong) hive_inspection(queen_seen:b, brood_frames:i[0..30], temperament=calm|nervous|aggressive, inspected_at) honey_harvest(hive_name, weight_kg, moisture_pct, harvested_on)
# energy_utilities | Energy and utilities | Generating, distributing and selling energy and water: grids, renewables, metering, outages, EV charging and trading.
grid_operations | Operating the electricity grid: substations, switching orders and load forecasts. | substation(name, voltage_kv:n[0..1000], region, status=energized|de_energized|maintenance) switching_order(feeder_name, action=open|close|transfer, planned_at, crew_name, status=draft|approved|executed) load_forecast(region, forecast_date, peak_mw, confidence_pct)
solar_farms | Monitoring utility-scale solar plants: inverters, production and curtailment events. | solar_plant(name, capacity_mw, latitude, longitude, commissioned_on) inverter(serial_number, rated_kw, status=producing|standby|fault|offline, efficiency_pct) curtailment_event(reason=grid_constraint|negative_price|maintenance, curtailed_mwh:n[0..], started_at, ended_at)
wind_farms | Operating wind turbines: availability, turbine alarms and blade inspections. | wind_turbine(name, rated_mw:n[0..20], hub_height_m, state=running|idle|fault|maintenance|curtailed) turbine_alarm(alarm_code, severity=info|warning|critical, raised_at, auto_reset:b) blade_inspection(method=drone|rope_access|ground, damage_class=none|minor|moderate|severe, inspected_on)
utility_billing | Billing utility customers: service accounts, meter readings, tariffs and payment plans. | utility_account(account_number, service_type=electricity|gas|water|district_heat, tariff_name, service_address, is_paperless) meter_reading(meter_number, reading_value:n[0..], read_type=actual|estimated|customer, read_at) payment_plan(installments:i[2..24], installment_amount, start_date, status=active|completed|broken)
outage_management | Reporting and restoring power outages, dispatching crews and notifying affected customers. | outage(area, cause=storm|equipment_failure|vegetation|animal|planned_work, customers_affected:i[0..], started_at, estimated_restoration_at, status=reported|crew_assigned|restored) crew_assignment(crew_name, outage_area, dispatched_at, status=dispatched|on_site|completed) outage_notification(channel=sms|email|push|ivr, message, sent_at)
ev_charging_network | Running public EV charging networks: charging stations, sessions and tariffs. | charging_station(name, connector_type=ccs|chademo|type2|nacs, max_power_kw, latitude, longitude, status=available|charging|faulted|offline) charging_session(station_name, energy_kwh, started_at, ended_at, cost) charging_tariff(name, price_per_kwh:n[0..5], idle_fee_per_minute:n[0..5], currency)
energy_trading | Trading power and gas in wholesale markets: market bids, gas nominations and settlements. | market_bid(market=day_ahead|intraday|balancing, delivery_hour:i[0..23], volume_mwh:n[0..], price_per_mwh:n, side=buy|sell) gas_nomination(pipeline, gas_day:d, volume_mwh:n[0..], entry_point) settlement(trade_date, counterparty, amount:n, status=pending|confirmed|disputed)
water_utilities | Running water networks: pump stations, reservoirs, leak alerts and water quality tests. | pump_station(name, flow_lps:n[0..10000], pressure_bar:n[0..30], status=running|standby|fault) reservoir(name, level_pct, capacity_m3:n[0..]) leak_alert(pipe_segment, estimated_loss_lps:n[0..], detected_at, status=open|confirmed|repaired) water_quality_test(site_name, chlorine_mg_l:n[0..10], turbidity_ntu:n[0..100], sampled_at)
building_energy | Managing commercial building energy: HVAC setpoints, demand response events and building ratings. | building(name, floor_area_m2, energy_rating=a|b|c|d|e|f|g, city) hvac_setpoint(zone, occupied_temp_c:n[16..28], unoccupied_temp_c:n[10..32], schedule_name) demand_response_event(program, reduction_kw, start_at, end_at, status=scheduled|active|completed|opted_out)
oil_and_gas | Monitoring upstream oil and gas wells, production reports and pipeline segments. | well(name, field, well_type=oil|gas|injection|water, status=producing|shut_in|drilling|abandoned, spud_date) production_report(well_name, oil_bbl:n[0..], gas_mcf:n[0..], water_bbl:n[0..], report_date) pipeline_segment(name, pressure_psi:n[0..3000], length_km, last_pigged_on)
# real_estate | Real estate | Buying, selling, renting and managing property: listings, leases, maintenance, mortgages, valuation and construction.
property_listings | Publishing homes for sale with photos, features, prices and open houses. | property(address, property_type=house|apartment|condo|townhouse|land, bedrooms:i[0..20], bathrooms:n[0..20], floor_area_m2, list_price, status=coming_soon|active|under_offer|sold|withdrawn) open_house(start_at, end_at, agent_email, rsvp_count) listing_photo(url, caption, position:i[1..100], is_cover)
rental_management | Managing residential rental units, tenant leases and rent collection. | rental_unit(unit_number, building_name, bedrooms:i[0..10], monthly_rent, is_available) lease(tenant_email, start_date, end_date, monthly_rent, deposit, status=pending|active|ended|terminated) rent_payment(amount, due_date, paid_at, method=ach|card|check|cash)
property_maintenance | Handling property maintenance requests, vendors and preventive maintenance tasks. | maintenance_request(unit_number, category=plumbing|electrical|hvac|appliance|pest|other, description, priority, photo_urls[], submitted_at, status=new|assigned|in_progress|completed) vendor(name, trade=plumber|electrician|hvac|handyman|cleaner, phone, hourly_rate) preventive_task(title, frequency=monthly|quarterly|semiannual|annual, next_due_date, asset_name)
home_buying | Helping buyers search homes, schedule viewings, make offers and track closing. | saved_search(name, city, min_price, max_price, min_bedrooms:i[0..10], alert_frequency=instant|daily|weekly) viewing(property_address:s, viewing_at, agent_name, feedback) purchase_offer(property_address:s, offer_price, contingencies[], expires_at, status=draft|submitted|countered|accepted|rejected)
mortgage_origination | Pre-qualifying borrowers, locking mortgage rates and clearing underwriting conditions. | mortgage_application(borrower_email, loan_amount, property_value, loan_type=fixed_30|fixed_15|arm_5_1|fha|va, credit_score:i[300..850], status=started|submitted|underwriting|approved|denied|closed) rate_lock(rate_pct:n[0..25], lock_days:i[15..120], locked_at, points:n[0..5]) underwriting_condition(description, condition_type=prior_to_doc|prior_to_funding|prior_to_close, is_cleared)
commercial_real_estate | Leasing and managing office, retail and industrial space, tenant companies and rent rolls. | commercial_space(building_name, suite, space_type=office|retail|industrial|flex|medical, area_m2, asking_rent_per_m2:n[0..]) tenant_company(name, industry, credit_rating=aaa|aa|a|bbb|bb|b|ccc, contact_email) rent_roll_entry(suite, lease_start:d, lease_end:d, annual_rent, escalation_pct)
hoa_management | Running homeowners associations: dues, rule violations and architectural requests. | hoa_dues(unit_number, amount, due_date, status=due|paid|late|in_collections) violation(unit_number, violation_type=parking|noise|landscaping|trash|pets|architectural, description, reported_on, fine_amount) architectural_request(unit_number, project=fence|paint|solar|deck|landscaping|windows, description, submitted_at, decision=pending|approved|denied)
property_valuation | Estimating property values with automated valuations, comparable sales and appraisal orders. | valuation(property_address:s, estimated_value, confidence_pct, method=avm|comparable_sales|income|cost, valued_at) comparable_sale(address, sale_price, sold_on, floor_area_m2, distance_km) appraisal_order(property_address:s, appraiser_email, due_date, fee, status=ordered|scheduled|completed|revised)
coworking_spaces | Booking coworking desks and meeting rooms and registering visitor passes. | desk_booking(location, desk_type=hot_desk|dedicated|private_office, booking_date, member_email, status=booked|checked_in|cancelled) meeting_room(name, capacity:i[1..200], hourly_rate, has_video_conferencing) visitor_pass(visitor_name, host_email, visit_date, purpose)
construction_projects | Tracking building construction projects: site inspections and change orders. | construction_project(name, site_address, budget, start_date, target_completion_date, status=planning|permitting|in_progress|punch_list|complete) site_inspection(inspection_type=foundation|framing|electrical|plumbing|final, inspector_name, result=pass|fail|partial, inspected_on) change_order(description, cost_impact:n, schedule_impact_days:i[-365..365], status=proposed|approved|rejected)
# science_lab | Science and research labs | Running research labs: samples, instruments, experiments, sequencing, chemicals, clinical trials, data and grants.
sample_management | Registering, storing and tracking lab samples, aliquots and freezer locations in a LIMS. | lab_sample(sample_type=blood|tissue|dna|rna|cell_line|soil|water, collected_at, volume_ml, storage_temp_c:n[-196..25], status=received|in_storage|in_use|depleted|disposed) freezer_location(freezer_name, rack:i[1..50], box:i[1..100], position:i[1..100]) aliquot(parent_barcode, volume_ml, created_at)
instrument_scheduling | Booking shared lab instruments, usage sessions and calibration records. | instrument(name, instrument_type=microscope|sequencer|mass_spec|flow_cytometer|hplc|pcr, location, hourly_rate, status=available|in_use|maintenance|offline) instrument_booking(user_email, start_at, end_at, project_code) calibration_record(performed_on, technician_name, passed:b, next_due_date)
experiment_tracking | Recording experiments in an electronic lab notebook: protocols, runs and observations. | experiment(title, hypothesis, protocol_name, start_date, status=planned|running|completed|failed|abandoned) protocol(name, version, steps[], estimated_minutes) observation(experiment_title, body, measured_value:n, recorded_at)
genomics_sequencing | Submitting DNA sequencing runs and libraries and querying variant calls. | sequencing_run(platform=illumina_novaseq|illumina_miseq|pacbio|nanopore, read_length:i[50..30000], flow_cell_id:s, status=queued|running|completed|failed, started_at) sequencing_library(sample_name, prep_kit, index_sequence, concentration_ng_ul:n[0..1000]) variant_call(chromosome=chr1|chr2|chr3|chrX|chrY|chrM, position:i[1..], ref_allele, alt_allele, quality:n[0..])
chemical_inventory | Tracking chemical containers, hazard classes, safety data sheets and chemical orders. | chemical_container(chemical_name, cas_number, quantity_g:n[0..], location, hazard_class=flammable|corrosive|toxic|oxidizer|none, expires_on) sds_document(chemical_name, revision_date, url) chemical_order(chemical_name, quantity_g:n[0..], vendor, status=requested|ordered|received)
clinical_trials | Running clinical trials: studies, trial sites, participant enrolment and adverse events. | trial(title, phase=phase_1|phase_2|phase_3|phase_4, condition, target_enrollment:i[1..100000], status=planning|recruiting|active|completed|terminated) trial_site(name, country, principal_investigator, enrolled_count) adverse_event(participant_code, term, severity=mild|moderate|severe|life_threatening, serious:b, onset_date)
research_data | Publishing and querying research datasets, dataset versions and data access requests. | dataset(title, description, license=cc_by|cc0|cc_by_nc|mit|restricted, doi, size_gb) dataset_version(version, changelog, released_on) access_request(requester_email, purpose, requested_at, status=pending|approved|denied)
grant_management | Applying for and managing research grants: proposals, budget lines and progress reports. | grant_proposal(title, funder=nih|nsf|erc|wellcome|gates|other, requested_amount, duration_months:i[1..120], submitted_at, status=drafting|submitted|funded|declined) grant_budget_line(category=personnel|equipment|travel|consumables|overhead, amount, fiscal_year:i[2000..2100]) progress_report(period_end:d, summary, due_date)
microscopy_imaging | Acquiring and analysing microscopy images: acquisitions, imaging channels and segmentation jobs. | acquisition(microscope_name, objective=10x|20x|40x|63x|100x, z_slices:i[1..1000], acquired_at) imaging_channel(fluorophore=dapi|gfp|rfp|cy5|brightfield, exposure_ms, laser_power_pct) segmentation_job(model=cellpose|stardist|watershed|custom, target=nuclei|cells|organelles, status=queued|running|done|failed)
field_research | Running ecological field studies: study sites, species observations and sensor deployments. | study_site(name, latitude, longitude, habitat=forest|grassland|wetland|marine|desert|urban, elevation_m) species_observation(species_name, count:i[0..100000], observer_email, observed_at, confidence=certain|probable|possible) sensor_deployment(sensor_type=camera_trap|acoustic|weather|water_level, deployed_on, retrieval_due_date, battery_pct)
# government_services | Government services | Citizen-facing public services: permits, vehicles, benefits, taxes, 311 requests, elections, records and emergencies.
permits_licensing | Applying for building, business and event permits, booking inspections and paying permit fees. | permit_application(permit_type=building|business|event|signage|food_service|demolition, applicant_email, site_address, submitted_at, status=draft|submitted|under_review|approved|denied) inspection_booking(inspection_type=foundation|electrical|plumbing|fire|final, requested_date, inspector_name) permit_fee(amount, fee_type=application|inspection|renewal|late, paid:b)
vehicle_registration | Registering vehicles, renewing driver licences and paying traffic fines with the motor vehicle agency. | vehicle_registration(vin, plate_number, make, model, registration_expiry_date) driver_license(license_number, license_class=a|b|c|d|m, expiry_date, has_restrictions) traffic_fine(citation_number, amount, violation=speeding|parking|red_light|no_insurance, issued_on, status=unpaid|paid|contested|dismissed)
public_benefits | Screening eligibility for and applying to social benefit programmes and tracking benefit payments. | benefit_application(program=snap|medicaid|unemployment|housing|child_care, household_size:i[1..20], monthly_income, submitted_at, status=draft|submitted|pending_verification|approved|denied) eligibility_screening(program=snap|medicaid|unemployment|housing|child_care, household_size:i[1..20], annual_income, is_eligible) benefit_payment(amount, payment_date, method=direct_deposit|ebt_card|check)
tax_administration | Managing taxpayer accounts, property tax bills and tax refunds for a tax authority. | taxpayer_account(taxpayer_number, account_type=individual|business|trust, email, balance_due:n[0..]) property_tax_bill(parcel_number, tax_year:i[2000..2100], assessed_value, amount_due:n[0..], due_date) tax_refund(amount, tax_year:i[2000..2100], status=processing|approved|issued|offset, issued_on)
civic_requests | Reporting non-emergency city issues such as potholes and graffiti and tracking 311 service requests. | service_request(request_type=pothole|streetlight|graffiti|missed_collection|noise|abandoned_vehicle, description, latitude, longitude, reported_at, status=open|assigned|in_progress|closed) request_update(status=open|assigned|in_progress|closed, note, updated_at) service_department(name, phone, sla_days:i[1..90])
elections | Administering elections: voter registrations, polling places and election results. | voter_registration(first_name, last_name, birth_date, residential_address, party=democratic|republican|independent|green|libertarian|none, status=active|inactive|pending|cancelled) polling_place(name, address, opens_at:t, closes_at:t, is_accessible) election_result(contest, candidate_name, votes:i[0..], reported_at)
public_records | Requesting public records, freedom-of-information disclosures and certified copies of certificates. | records_request(record_type=birth_certificate|marriage_certificate|death_certificate|property_deed|police_report, requester_email, copies:i[1..10], delivery=mail|pickup|electronic, status=received|searching|ready|delivered|denied) foia_request(agency, description, fee_waiver_requested:b, submitted_at) certified_copy(document_number, issued_on, fee)
emergency_services | Coordinating emergency dispatch calls, response units and public safety alerts. | dispatch_call(incident_type=fire|medical|police|hazmat|rescue, priority=p1|p2|p3|p4, address, received_at, status=pending|dispatched|on_scene|closed) response_unit(call_sign, unit_type=engine|ambulance|patrol|ladder|hazmat, status=available|en_route|on_scene|out_of_service) public_alert(alert_type=evacuation|shelter_in_place|weather|amber|all_clear, area, message, issued_at)
immigration_services | Filing immigration applications, booking biometrics appointments and uploading supporting evidence. | immigration_case(form_type=i130|i485|i765|n400|visa_renewal, receipt_number, filed_on, status=received|biometrics|interview|approved|denied|rfe) biometrics_appointment(location, scheduled_at, confirmation_code) evidence_document(document_type=passport|birth_certificate|marriage_certificate|employment_letter|bank_statement, file_url, uploaded_at)
parks_recreation | Booking park facilities, recreation programmes and campsites. | facility_reservation(facility_type=picnic_shelter|sports_field|community_room|pool_lane, reservation_date, start_time, hours:i[1..12], attendees:i[1..500], status=requested|confirmed|cancelled) recreation_program(name, age_min:i[0..99], age_max:i[0..120], fee, sessions:i[1..100], starts_on) campsite_booking(park_name, site_number, arrival_date, nights:i[1..14], vehicles:i[0..4])
# telecom | Telecommunications | Running and using telecom services: mobile plans, broadband, number porting, network operations, messaging and billing.
mobile_plans | Managing mobile phone subscriptions, plan add-ons and SIM cards. | mobile_subscription(phone, plan_name, data_allowance_gb, contract_end_date, status=active|suspended|ported_out|cancelled) plan_addon(name, addon_type=data|roaming|international_calls|streaming, price, valid_days:i[1..365]) sim_card(iccid, sim_type=physical|esim, activated_at, is_locked)
broadband_service | Ordering and managing home broadband: installations, speed tests and routers. | broadband_order(service_address, technology=fiber|cable|dsl|fixed_wireless|satellite, download_mbps:i[1..10000], install_date, status=ordered|scheduled|installed|cancelled) speed_test(download_mbps:n[0..], upload_mbps:n[0..], latency_ms, tested_at) router(model, firmware_version, wifi_band=2_4ghz|5ghz|6ghz|dual_band, is_online)
number_porting | Porting phone numbers between carriers and managing phone number inventory and reservations. | port_request(phone, losing_carrier, account_number, requested_port_date, status=submitted|pending|confirmed|completed|rejected) phone_number(phone, number_type=local|toll_free|mobile|short_code, region, is_assigned) number_reservation(quantity:i[1..1000], area_code:s, expires_at)
network_operations | Monitoring telecom network elements: cell sites, network alarms and maintenance windows. | cell_site(site_code, technology=lte|nr_5g|umts|gsm, latitude, longitude, status=on_air|degraded|down|planned) network_alarm(element_name, alarm_type=link_down|high_temperature|power_failure|packet_loss, severity=minor|major|critical, raised_at, cleared:b) maintenance_window(name, start_at, end_at, impact=none|degraded|outage)
voip_telephony | Configuring business phone systems: extensions, call queues and IVR menus. | extension(number:i[100..99999], user_email, voicemail_enabled, forwarding_phone) call_queue(name, strategy=ring_all|round_robin|longest_idle|skills_based, max_wait_seconds:i[10..3600], members[]) ivr_menu(name, greeting_text, options_count:i[1..9], timeout_seconds:i[1..60])
sms_messaging | Sending SMS messages and campaigns from templates and honouring opt-outs. | sms_message(to_phone, body, sender_id:s, scheduled_at, status=queued|sent|delivered|failed|undelivered) message_template(name, body, category=marketing|transactional|otp, language) opt_out(phone, keyword=stop|unsubscribe|cancel|end|quit, opted_out_at)
telecom_billing | Rating usage records, generating telecom bills and applying bill adjustments. | telecom_bill(account_number, billing_period, total_amount, due_date, status=open|paid|overdue|disputed) usage_record(usage_type=voice|sms|data|roaming, quantity:n[0..], unit=minutes|messages|mb, recorded_at) bill_adjustment(amount:n, reason, approved_by_email, created_at)
telecom_customer_care | Handling telecom customer care: trouble tickets, technician visits and retention offers. | trouble_ticket(issue_type=no_signal|slow_internet|billing|device|outage, description, priority, opened_at, status=open|in_progress|resolved|closed) technician_visit(visit_date, time_slot=morning|afternoon|evening, technician_name, status=booked|en_route|completed|missed) retention_offer(offer_type=discount|upgrade|bonus_data|free_month, monthly_discount, valid_months:i[1..24])
iot_connectivity | Managing IoT SIM fleets: device connectivity, shared data pools and usage alerts. | iot_device(imei, device_type=tracker|meter|sensor|gateway|camera, sim_iccid, status=active|inactive|suspended, last_seen_at) data_pool(name, pool_size_gb, used_gb, overage_rate_per_mb:n[0..1]) usage_alert(threshold_pct, action=notify|throttle|suspend, notify_email)
satellite_communications | Provisioning satellite terminals and bandwidth plans and computing link budgets for remote sites. | satellite_terminal(serial_number, terminal_type=vsat|leo_dish|handheld|maritime, latitude, longitude, status=online|offline|commissioning) bandwidth_plan(name, download_mbps:i[1..10000], upload_mbps:i[1..1000], monthly_data_gb, price) link_budget(frequency_band=l|c|ku|ka, elevation_deg:n[0..90], rain_margin_db:n[0..20], computed_at)
# automotive | Automotive | Owning, selling and servicing vehicles: connected cars, dealerships, repairs, parts, EVs, insurance, parking and mobility.
connected_car | Controlling a connected car remotely: door locks, climate, location, trips and vehicle health. | car(vin, nickname, odometer_km, fuel_level_pct, is_locked) remote_command(command=lock|unlock|start_climate|stop_climate|honk_flash|open_trunk, issued_at, status=pending|succeeded|failed) trip(started_at, ended_at, distance_km, average_speed_kmh, energy_used_kwh)
dealership_sales | Selling cars at a dealership: vehicle inventory, test drives, sales quotes and trade-ins. | inventory_vehicle(vin, make, model, year, price, condition=new|used|certified, status=available|reserved|sold) test_drive(customer_email, vehicle_vin, scheduled_at, duration_minutes, status=booked|completed|no_show|cancelled) sales_quote(vehicle_vin, sale_price, trade_in_value, finance_term_months:i[0..96], expires_at)
auto_repair | Running a car repair shop: service appointments, repair orders and technicians. | service_appointment(vehicle_vin, service_type=oil_change|brakes|tires|diagnostics|inspection|repair, scheduled_at, customer_email, status=booked|in_service|ready|picked_up|cancelled) repair_order(complaint, diagnosis, labor_hours:n[0..100], parts_total, status=open|awaiting_parts|in_progress|completed) technician(name, certifications[], hourly_rate)
auto_parts | Looking up car parts by vehicle fitment and ordering them from parts suppliers. | auto_part(part_number, name, category=engine|brakes|suspension|electrical|body|filters, price, stock_quantity:i[0..]) fitment(make, model, year, engine) parts_order(supplier, lines[]{part_number, quantity}, ship_method=ground|express|will_call, status=draft|placed|shipped|received)
ev_ownership | Managing an electric vehicle: charging schedules, battery health and EV route planning with charging stops. | charge_schedule(target_soc_pct, depart_at, off_peak_only:b, max_current_a:i[6..48]) battery_health(state_of_health_pct, cycle_count, estimated_range_km, measured_at) ev_route_plan(origin, destination, arrival_soc_pct, avoid_tolls:b)
vehicle_insurance | Quoting and managing car insurance policies, insured drivers and accident claims. | auto_policy(policy_number, coverage=liability|collision|comprehensive|full, deductible, annual_premium, renewal_date, status=quoted|active|lapsed|cancelled) insured_driver(full_name, birth_date, license_number, years_licensed:i[0..80]) auto_claim(incident_date, incident_type=collision|theft|glass|weather|vandalism, description, estimated_damage:n[0..], status=filed|assessing|approved|denied|paid)
parking | Finding and paying for parking: parking facilities, parking sessions and permits. | parking_facility(name, address, total_spaces:i[1..20000], hourly_rate, has_ev_charging) parking_session(plate_number, zone_code, started_at, duration_minutes, amount) parking_permit(permit_type=resident|employee|visitor|disabled, plate_number, valid_from:d, valid_until:d)
fleet_telematics | Tracking commercial vehicle telematics: GPS positions, driving events and diagnostic trouble codes. | gps_position(vehicle_name, latitude, longitude, speed_kmh, heading_deg:n[0..360], recorded_at) driving_event(event_type=harsh_brake|harsh_acceleration|speeding|idling|phone_use, severity=low|medium|high, occurred_at, driver_name) diagnostic_trouble_code(dtc, description, mil_on:b, reported_at)
ride_hailing | Requesting rides, estimating fares and rating drivers in a ride-hailing app. | ride_request(pickup_address:s, dropoff_address:s, ride_type=economy|comfort|xl|premium|shared, requested_at, status=searching|accepted|arriving|in_progress|completed|cancelled) fare_estimate(distance_km, duration_minutes, surge_multiplier:n[1..5], estimated_fare) driver_rating(stars:i[1..5], comment, tip_amount)
car_sharing | Booking shared cars by the hour: car availability, reservations and damage reports. | shared_car(model, location, hourly_rate, fuel_level_pct, is_available) car_reservation(start_at, end_at, car_model, status=reserved|active|completed|cancelled) damage_report(location_on_car=front|rear|left|right|interior|roof, description, photo_url, reported_at)
# sports_fitness | Sports and fitness | Training, competing and staying fit: workouts, gyms, teams, league stats, races, nutrition, wearables and venues.
workout_tracking | Logging workouts, exercise sets and personal records. | workout(name, workout_type=strength|running|cycling|swimming|yoga|hiit, started_at, duration_minutes, calories:i[0..10000]) exercise_set(exercise_name, reps:i[0..1000], weight_kg, rest_seconds:i[0..1800]) personal_record(exercise_name, value:n[0..], unit=kg|seconds|meters|reps, achieved_on)
gym_management | Running a gym: memberships, fitness class schedules and member check-ins. | gym_membership(member_email, plan=monthly|annual|off_peak|student|family, start_date, status=active|frozen|cancelled|expired, auto_renew:b) fitness_class(name, class_type=spin|yoga|pilates|boxing|crossfit|zumba, instructor_name, start_at, capacity:i[1..200]) check_in(member_email, location, checked_in_at)
team_sports_management | Managing amateur sports clubs: teams, fixtures and training sessions. | club_team(name, sport=soccer|basketball|volleyball|hockey|rugby|cricket, age_group, coach_email) fixture(home_team, away_team, kickoff_at, venue, status=scheduled|played|postponed|cancelled) training_session(team_name, start_at, duration_minutes, focus=fitness|tactics|technique|set_pieces)
sports_league_stats | Querying professional sports league standings, player statistics and game schedules. | league_standing(league=nba|nfl|mlb|nhl|epl|laliga, season, team_name, wins:i[0..200], losses:i[0..200]) player_stat(player_name, stat_type=points|assists|rebounds|goals|yards|home_runs, value:n[0..], game_date) game_schedule(league=nba|nfl|mlb|nhl|epl|laliga, team_name, start_date, end_date)
running_races | Organising running races: race events, runner registrations and timing results. | race(name, distance=5k|10k|half_marathon|marathon|ultra, race_date, city, entry_fee, capacity:i[1..60000]) race_registration(runner_email, bib_number:i[1..99999], corral=a|b|c|d|e, shirt_size=xs|s|m|l|xl|xxl, registered_at) race_result(bib_number:i[1..99999], chip_time_seconds, overall_place:i[1..], age_group)
nutrition_tracking | Tracking meals, calories, macronutrient goals and water intake. | meal_log(meal_type=breakfast|lunch|dinner|snack, food_name, calories:i[0..5000], protein_g:n[0..500], eaten_at) macro_goal(daily_calories:i[800..6000], protein_pct, carbs_pct, fat_pct) water_intake(amount_ml, beverage=water|tea|coffee|juice|sports_drink, logged_at)
wearable_devices | Syncing fitness wearables: heart rate samples, sleep records and step goals. | wearable(name, model, firmware_version, battery_pct, last_synced_at) heart_rate_sample(bpm:i[20..250], measured_at, context=rest|exercise|sleep) sleep_record(sleep_start_at, sleep_end_at, deep_minutes, rem_minutes, sleep_score:i[0..100]) step_goal(daily_steps:i[100..100000], start_date, reminder_enabled)
sports_venue_booking | Booking tennis courts, pitches and other sports facilities with equipment rental. | court(name, sport=tennis|padel|badminton|squash|basketball|football, surface=clay|grass|hard|artificial|wood, indoor:b, hourly_rate) court_booking(court_name, start_at, duration_minutes, player_count:i[1..22], status=booked|cancelled|completed) equipment_rental(item=racket|balls|shoes|bibs|locker, quantity, price)
coaching_plans | Creating personalised athletic training plans with weekly workouts and athlete feedback. | training_plan(athlete_email, goal=race_prep|strength|weight_loss|mobility|return_from_injury, start_date, weeks:i[1..52], coach_email) plan_workout(week:i[1..52], day=monday|tuesday|wednesday|thursday|friday|saturday|sunday, description, target_rpe:i[1..10]) athlete_feedback(fatigue:i[1..10], soreness:i[1..10], notes, submitted_at)
outdoor_adventure | Planning hikes, climbs and backcountry trips: trail routes, permits and gear lists. | trail_route(name, distance_km, elevation_gain_m, difficulty=easy|moderate|hard|expert, region) backcountry_permit(area, entry_date, group_size:i[1..25], nights:i[0..21], status=applied|issued|denied) gear_item(name, category=shelter|sleep|cooking|clothing|navigation|safety, weight_g:n[0..20000], packed:b)
# food_delivery | Food and restaurants | Ordering and serving food: delivery apps, reservations, menus, kitchens, groceries, recipes, catering and POS.
food_ordering | Ordering food delivery from restaurants and tracking the courier to the door. | restaurant(name, cuisine=italian|chinese|indian|mexican|japanese|thai|american, rating, delivery_fee, is_open) food_order(restaurant_name, items[]{menu_item, quantity, special_instructions}, delivery_address, tip_amount, status=placed|accepted|preparing|picked_up|delivered|cancelled) courier_location(latitude, longitude, eta_minutes, updated_at)
restaurant_reservations | Booking restaurant tables, managing walk-in waitlists and dining table layouts. | table_reservation(restaurant_name, party_size:i[1..30], reserved_at, occasion=none|birthday|anniversary|business|date_night, status=booked|seated|completed|no_show|cancelled) walk_in_waitlist(party_name, party_size:i[1..30], quoted_wait_minutes, phone) dining_table(table_number:i[1..500], seats:i[1..30], area=indoor|patio|bar|private_room)
menu_management | Maintaining restaurant menus, menu items, modifier groups, allergens and availability. | menu_item(name, description, price, category=starter|main|dessert|drink|side, allergens[], is_available) modifier_group(name, min_selections:i[0..10], max_selections:i[1..20], is_required:b) menu(name, service=breakfast|lunch|dinner|all_day, active_from:t, active_until:t)
kitchen_operations | Running a commercial kitchen: kitchen order tickets, prep tasks and food safety logs. | kitchen_ticket(order_number, station=grill|fry|saute|cold|pastry|expo, fired_at, status=queued|cooking|ready|served) prep_task(item_name, quantity, unit=kg|liters|portions|pieces, due_at, assignee_name) food_safety_log(check_type=fridge_temp|cook_temp|cleaning|delivery_check, value_c:n, passed:b, logged_at)
grocery_delivery | Shopping for groceries online: baskets, substitutions, delivery slots and recurring orders. | grocery_basket(store_name, items[]{product_name, quantity}, substitution_policy=allow|ask|never) delivery_slot(date, start_time, end_time, fee, is_available) recurring_grocery_order(frequency=weekly|biweekly|monthly, next_delivery_date, basket_name, status=active|paused|cancelled)
recipe_management | Finding, saving and scaling recipes, weekly meal plans and ingredients. | recipe(title, cuisine, servings:i[1..50], prep_minutes, cook_minutes, difficulty=easy|medium|hard, ingredients[]) meal_plan(week_start_date, meals_per_day:i[1..6], diet=omnivore|vegetarian|vegan|keto|pescatarian) ingredient(name, quantity:n[0..], unit=g|kg|ml|l|cup|tbsp|tsp|piece)
catering_events | Quoting and delivering catering for events: catering orders, menus and event staffing. | catering_order(event_date, guest_count, service_style=buffet|plated|family_style|boxed, venue_address, budget, status=inquiry|quoted|confirmed|delivered) catering_menu(name, price_per_person:n[0..], dietary_options[]) event_staffing(role=server|bartender|chef|captain, headcount:i[1..100], shift_start_at)
restaurant_pos | Operating restaurant point of sale: guest checks, payments, tips, voids and end-of-day sales reports. | guest_check(table_number:i[1..500], server_name, subtotal:n[0..], tax_amount, status=open|closed|voided, opened_at) pos_payment(amount, method=card|cash|mobile_wallet|gift_card, tip_amount, paid_at) daily_sales_report(business_date:d, gross_sales, covers:i[0..], voids_total)
meal_kits | Managing meal-kit subscriptions: weekly boxes, recipe selections, skips and delivery preferences. | meal_kit_box(week_start_date, recipes_count:i[2..6], servings:i[1..6], status=open|locked|shipped|skipped) recipe_selection(recipe_name, servings:i[1..6], add_protein:b) delivery_preference(weekday=monday|tuesday|wednesday|thursday|friday|saturday, time_window=morning|afternoon|evening, instructions)
food_waste_tracking | Measuring and reducing food waste: waste logs, food donations and expiry alerts. | waste_log(item_name, weight_kg, reason=spoilage|overproduction|plate_waste|trim|expired, logged_at) food_donation(recipient_org, weight_kg, pickup_at, status=scheduled|picked_up|cancelled) expiry_alert(item_name, expires_on, quantity, action=use_first|discount|donate|discard)
# manufacturing | Manufacturing | Making physical products: production planning, quality, maintenance, BOMs, shop-floor execution, 3D printing and safety.
production_planning | Planning production orders, work-center capacity and material requirements on the shop floor. | production_order(product_sku, quantity, due_date, line, status=planned|released|in_progress|completed|closed) capacity_plan(work_center, week_start_date, available_hours:n[0..168], load_pct) material_requirement(component_sku, required_quantity:n[0..], needed_by:d, shortage:b)
quality_control | Running quality inspections, non-conformance reports and corrective and preventive actions (CAPA). | quality_inspection(lot_number, inspection_type=incoming|in_process|final|audit, sample_size:i[1..10000], defects_found:i[0..], result=pass|fail|conditional) nonconformance(description, severity=minor|major|critical, detected_at, disposition=rework|scrap|use_as_is|return_to_vendor) capa(title, root_cause, owner_email, due_date, status=open|implementing|verifying|closed)
predictive_maintenance | Predicting machine failures from sensor data, scheduling maintenance work orders and tracking downtime. | machine(name, machine_type=cnc|press|injection_molder|conveyor|robot|compressor, line, runtime_hours:n[0..], health_score) maintenance_work_order(machine_name, work_type=preventive|corrective|predictive|inspection, priority, scheduled_at, status=open|scheduled|in_progress|done) downtime_event(machine_name, reason=breakdown|changeover|no_material|no_operator|planned, started_at, duration_minutes)
bill_of_materials | Managing bills of materials, components, revisions and engineering change orders. | bom(product_sku, revision, status=draft|released|obsolete, effective_date) bom_component(component_sku, quantity_per:n[0..], unit=each|kg|m|l, is_phantom) engineering_change_order(title, reason, impact=cost|quality|safety|compliance, requested_by_email, status=draft|review|approved|implemented)
shop_floor_execution | Tracking shop-floor execution: work orders, operator logs, scrap and OEE snapshots. | work_order(operation, work_center, planned_quantity:i[1..], completed_quantity:i[0..], status=queued|running|paused|done) operator_log(operator_name, shift=day|swing|night, clock_in_at, clock_out_at) scrap_record(sku, quantity, reason=defect|setup|damage|expired, recorded_at) oee_snapshot(line, availability_pct, performance_pct, quality_pct, captured_at)
supplier_quality | Managing supplier quality: supplier audits, scorecards and material certificates. | supplier_audit(supplier_name, audit_type=onsite|remote|desk, scheduled_on, score, result=approved|conditional|rejected) supplier_scorecard(supplier_name, quarter, on_time_delivery_pct, ppm_defects:i[0..1000000]) material_certificate(lot_number, certificate_type=coa|coc|rohs|reach, issued_on, file_url)
additive_manufacturing | Running 3D printers: print jobs, printers and material spools. | print_job(file_name, printer_name, material=pla|abs|petg|nylon|resin|titanium, layer_height_mm:n[0.01..1], infill_pct, status=queued|printing|done|failed) printer(name, technology=fdm|sla|sls|dmls|mjf, build_volume_l:n[0..1000], is_online) material_spool(material=pla|abs|petg|nylon|tpu, color, remaining_g:n[0..10000])
industrial_iot | Collecting industrial sensor data from PLC tags and edge gateways with threshold alarms. | plc_tag(tag_name, plc_address:s, data_type=bool|int|real|string, scan_rate_ms) edge_gateway(name, protocol=opc_ua|modbus|mqtt|profinet, ip_address, status=online|offline|degraded) threshold_alarm(tag_name, high_limit:n, low_limit:n, priority, is_enabled)
packaging_labeling | Designing packaging label templates, printing lot-coded labels and generating serial numbers. | label_template(name, label_size=4x6|4x4|2x1|a6, barcode_type=gs1_128|qr|datamatrix|upc_a|ean_13, fields[]) print_request(template_name, lot_number, copies:i[1..100000], printer_name, requested_at) serial_batch(product_sku, serial_count:i[1..1000000], prefix, generated_at)
workplace_safety | Managing factory safety: incident reports, permits to work and PPE issuance. | safety_incident(incident_type=injury|near_miss|spill|fire|property_damage, location, occurred_at, severity=low|medium|high|fatal, reporter_email) work_permit(permit_type=hot_work|confined_space|working_at_height|electrical|lockout_tagout, valid_from:dt, valid_until:dt, issuer_email, status=requested|issued|closed) ppe_issue(employee_email, item=helmet|gloves|goggles|respirator|boots|harness, issued_on, size)
# cybersecurity | Cybersecurity | Defending systems: vulnerabilities, identity and access, threat detection, endpoints, incident response and compliance.
vulnerability_management | Scanning assets for vulnerabilities, triaging CVE findings and tracking remediation. | asset(hostname, ip_address, os, criticality=low|medium|high|crown_jewel, owner_email) vulnerability_finding(cve_id:s, cvss_score:n[0..10], severity=low|medium|high|critical, status=open|in_remediation|accepted|fixed, first_seen_at) scan(scan_type=network|web_app|container|cloud_config, target, started_at, status=queued|running|completed|failed)
identity_access | Managing user accounts, groups, role assignments, MFA and access reviews in an identity provider. | user_account(username, email, department, mfa_enabled, status=active|suspended|deprovisioned, last_login_at) access_group(name, description, member_count) role_assignment(user_email, role=admin|editor|viewer|auditor|billing, scope, expires_at) access_review(name, reviewer_email, due_date, status=open|in_progress|completed)
threat_detection | Hunting threats with SIEM security alerts, detection rules and log searches. | security_alert(title, severity=low|medium|high|critical, source=edr|siem|ids|cloud|email, status=new|triaged|escalated|closed, detected_at) detection_rule(name, query, mitre_technique, is_enabled, severity=low|medium|high|critical) log_search(query, start_at, end_at, index, max_results:i[1..10000])
endpoint_security | Protecting laptops and servers: endpoint posture, host isolation, malware detections and policies. | endpoint(hostname, os=windows|macos|linux|ios|android, agent_version, is_isolated, last_seen_at) malware_detection(file_hash_sha256:s, threat_name, action=quarantined|deleted|allowed|blocked, detected_at) endpoint_policy(name, firewall_enabled, usb_blocked:b, disk_encryption_required:b)
security_incident_response | Running security incident response: cases, forensic evidence and containment actions. | security_case(title, category=malware|phishing|data_breach|insider|ddos|ransomware, severity=low|medium|high|critical, status=open|contained|eradicated|recovered|closed, opened_at) evidence_item(evidence_type=disk_image|memory_dump|log_bundle|email|screenshot, sha256, collected_at, custodian) containment_action(action=isolate_host|disable_account|block_ip|reset_password|revoke_token, target, executed_at)
phishing_defense | Handling user-reported phishing emails, phishing simulations and security awareness training. | reported_email(sender_email, subject, reported_by_email, verdict=phishing|spam|benign|pending, reported_at) phishing_simulation(name, template, target_group, send_at, click_rate_pct) awareness_training(course_name, assignee_email, due_date, completed:b)
secrets_management | Storing and rotating secrets, API keys and TLS certificates under access policies. | secret(path, engine=kv|database|pki|transit, version:i[1..], rotation_days:i[1..365], created_at) tls_certificate(common_name, issuer, not_after:dt, key_algorithm=rsa_2048|rsa_4096|ecdsa_p256|ed25519, auto_renew:b) access_policy(name, paths[], capabilities[], ttl_seconds:i[60..2592000])
network_security | Configuring firewall rules, VPN tunnels and intrusion prevention signatures. | firewall_rule(name, direction=inbound|outbound, protocol=tcp|udp|icmp|any, port:i[1..65535], source_cidr, action=allow|deny) vpn_tunnel(name, peer_ip, encryption=aes128|aes256|chacha20, status=up|down|negotiating) ips_signature(signature_code, category, action=alert|drop|reset, is_enabled)
security_compliance | Collecting security compliance evidence, answering customer security questionnaires and assessing vendor risk. | compliance_evidence(control_code, evidence_type=screenshot|policy|log_export|config|report, collected_on, file_url) security_questionnaire(customer_name, questions_count, due_date, status=received|in_progress|submitted) vendor_risk_assessment(vendor_name, tier=low|medium|high|critical, risk_score, assessed_on, next_review_date)
bug_bounty | Running a bug bounty programme: vulnerability reports, triage, programme scope and reward payouts. | bounty_report(title, researcher_handle, asset, severity=low|medium|high|critical, status=new|triaged|duplicate|resolved|informative, submitted_at) bounty_reward(amount, currency, awarded_at) program_scope(asset, asset_type=web|api|mobile|source_code|hardware, in_scope:b, max_severity=low|medium|high|critical)
"""


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class Attribute:
    """One typed field of an entity; ``schema()`` renders it as JSON Schema."""

    name: str
    json_type: str  # "string" | "integer" | "number" | "boolean" | "array" | "object"
    enum: tuple[str, ...] | None = None
    format: str | None = None  # date-time, date, email, uri, uuid, ipv4
    minimum: float | None = None
    maximum: float | None = None
    items: Attribute | None = None  # element type of an array
    description: str = ""
    pattern: str | None = None
    properties: tuple[Attribute, ...] = ()  # fields of a nested object

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.json_type}
        if self.description:
            out["description"] = self.description
        for key in ("format", "pattern"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.enum:
            out["enum"] = list(self.enum)
        for key in ("minimum", "maximum"):
            bound = getattr(self, key)
            if bound is not None:
                out[key] = int(bound) if self.json_type == "integer" else bound
        if self.items is not None:
            out["items"] = self.items.schema()
        if self.properties:
            out["properties"] = {p.name: p.schema() for p in self.properties}
            out["required"] = [p.name for p in self.properties]
            out["additionalProperties"] = False
        return out


@dataclass(frozen=True)
class Entity:
    """A resource the tools of a domain act on (an order, a position, a watchlist …)."""

    name: str
    attributes: tuple[Attribute, ...]


@dataclass(frozen=True)
class Domain:
    """A specific application domain inside a category."""

    slug: str
    title: str
    description: str
    category: str  # slug of the parent category
    entities: tuple[Entity, ...]


@dataclass(frozen=True)
class Category:
    """A key category of the hierarchy."""

    slug: str
    title: str
    description: str
    domains: tuple[Domain, ...]


# ------------------------------------------------------------------------------ type inference

_PHONE = r"^\+[1-9][0-9]{6,14}$"
_SYMBOL = r"^[A-Z0-9.]{1,12}$"
_SKU = r"^[A-Z0-9-]{3,32}$"
_CODE = r"^[A-Z0-9_-]{2,20}$"
_IBAN = r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"
_VIN = r"^[A-HJ-NPR-Z0-9]{17}$"
_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_MONEY = {"type": "number", "minimum": 0}

# Field name → schema fragment; exact names first, then prefixes, then suffixes (first hit wins).
_EXACT: dict[str, dict[str, Any]] = {
    "email": {"format": "email"},
    "phone": {"pattern": _PHONE},
    "url": {"format": "uri"},
    "currency": {"pattern": r"^[A-Z]{3}$"},
    "country": {"pattern": r"^[A-Z]{2}$"},
    "language": {"pattern": r"^[a-z]{2}(-[A-Z]{2})?$"},
    "locale": {"pattern": r"^[a-z]{2}(-[A-Z]{2})?$"},
    "quantity": {"type": "integer", "minimum": 1},
    "latitude": {"type": "number", "minimum": -90, "maximum": 90},
    "longitude": {"type": "number", "minimum": -180, "maximum": 180},
    "rating": {"type": "number", "minimum": 0, "maximum": 5},
    "score": {"type": "number", "minimum": 0, "maximum": 100},
    "symbol": {"pattern": _SYMBOL},
    "ticker": {"pattern": _SYMBOL},
    "sku": {"pattern": _SKU},
    "iban": {"pattern": _IBAN},
    "isbn": {"pattern": r"^(97[89])?[0-9]{9}[0-9X]$"},
    "vin": {"pattern": _VIN},
    "priority": {"enum": ("low", "normal", "high", "urgent")},
    "color": {"pattern": r"^#[0-9a-fA-F]{6}$"},
    "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
    "date": {"format": "date"},
    "month": {"pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])$"},
    "ip_address": {"format": "ipv4"},
    "address": {"type": "object"},
    "slug": {"pattern": r"^[a-z0-9]+(-[a-z0-9]+)*$"},
    "sha256": {"pattern": r"^[0-9a-f]{64}$"},
    "currency_pair": {"pattern": r"^[A-Z]{3}/[A-Z]{3}$"},
    "trading_pair": {"pattern": r"^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$"},
    "capacity": {"type": "integer", "minimum": 1},
    "subtotal": _MONEY,
    **{w: _MONEY for w in ("price", "amount", "cost", "fee", "balance", "budget", "deposit",
                           "premium", "deductible", "salary")},
}
_PREFIX: dict[str, dict[str, Any]] = {"is_": {"type": "boolean"}, "has_": {"type": "boolean"}}
_SUFFIX: list[tuple[str, dict[str, Any]]] = [
    ("_id", {"format": "uuid"}),
    ("_at", {"format": "date-time"}),
    ("_date", {"format": "date"}),
    ("_on", {"format": "date"}),
    ("_time", {"pattern": _HHMM}),
    ("_start", {"pattern": _HHMM}),
    ("_email", {"format": "email"}),
    ("_url", {"format": "uri"}),
    ("_phone", {"pattern": _PHONE}),
    ("_ip", {"format": "ipv4"}),
    ("_address", {"type": "object"}),
    ("_country", {"pattern": r"^[A-Z]{2}$"}),
    ("_currency", {"pattern": r"^[A-Z]{3}$"}),
    ("_symbol", {"pattern": _SYMBOL}),
    ("_sku", {"pattern": _SKU}),
    ("_vin", {"pattern": _VIN}),
    ("_iban", {"pattern": _IBAN}),
    ("_airport", {"pattern": r"^[A-Z]{3}$"}),
    ("_sha", {"pattern": r"^[0-9a-f]{7,40}$"}),
    ("_sha256", {"pattern": r"^[0-9a-f]{64}$"}),
    ("_code", {"pattern": _CODE}),
    ("_enabled", {"type": "boolean"}),
    ("_pct", {"type": "number", "minimum": 0, "maximum": 100}),
    ("_score", {"type": "number", "minimum": 0, "maximum": 100}),
    ("_rating", {"type": "number", "minimum": 0, "maximum": 5}),
    ("_count", {"type": "integer", "minimum": 0}),
    *[(s, {"type": "integer", "minimum": 0})
      for s in ("_seconds", "_minutes", "_hours", "_days", "_weeks", "_months", "_ms")],
    *[(s, _MONEY) for s in ("_price", "_amount", "_cost", "_fee", "_total", "_balance",
                            "_budget", "_pay", "_value", "_rent", "_savings", "_bid", "_premium",
                            "_income", "_sales", "_limit", "_discount", "_fare", "_rate")],
    ("_c", {"type": "number"}),
]
# Unit suffixes: non-negative numbers, with the unit spelled out in the description.
_UNITS = {
    "_kg": "kilograms", "_g": "grams", "_km": "kilometres", "_m": "metres", "_cm": "centimetres",
    "_mm": "millimetres", "_m2": "square metres", "_m3": "cubic metres", "_l": "litres",
    "_ml": "millilitres", "_kwh": "kilowatt-hours", "_kw": "kilowatts", "_mw": "megawatts",
    "_mwh": "megawatt-hours", "_mbps": "megabits per second", "_gb": "gigabytes",
    "_mb": "megabytes", "_kv": "kilovolts", "_a": "amperes", "_hz": "hertz", "_ppm": "parts per million",
    "_mg": "milligrams", "_mps": "metres per second", "_kmh": "kilometres per hour",
    "_ha": "hectares", "_db": "decibels", "_deg": "degrees", "_bar": "bar", "_psi": "psi",
    "_bbl": "barrels", "_mcf": "thousand cubic feet", "_lps": "litres per second",
    "_ntu": "NTU", "_tonnes": "tonnes", "_t": "tonnes", "_ppt": "parts per thousand",
    "_mg_l": "milligrams per litre", "_fps": "frames per second", "_k": "kelvin",
    "_c": "degrees Celsius", "_n": "newtons", "_lpm": "litres per minute", "_rpm": "revolutions per minute",
    "_ugm3": "micrograms per cubic metre", "_ng_ul": "nanograms per microlitre", "_ms_cm": "millisiemens per centimetre",
    "_kg_ha": "kilograms per hectare", "_t_ha": "tonnes per hectare", "_l_ha": "litres per hectare",
    "_pct": "percent", "_seconds": "seconds", "_minutes": "minutes", "_hours": "hours",
    "_days": "days", "_weeks": "weeks", "_months": "months", "_ms": "milliseconds",
}
_UNITS_LONGEST_FIRST = sorted(_UNITS, key=len, reverse=True)
_TYPE_CODES: dict[str, dict[str, Any]] = {
    "s": {"type": "string"}, "i": {"type": "integer"}, "n": {"type": "number"},
    "b": {"type": "boolean"}, "d": {"format": "date"}, "dt": {"format": "date-time"},
    "t": {"pattern": _HHMM}, "email": {"format": "email"}, "uri": {"format": "uri"},
    "uuid": {"format": "uuid"},
}
_ADDRESS_FIELDS = "street, city, postal_code:s, country"
_ACRONYMS = {
    "hr": "HR", "ev": "EV", "iot": "IoT", "crm": "CRM", "ci": "CI", "cd": "CD", "dns": "DNS",
    "seo": "SEO", "pos": "POS", "fx": "FX", "av": "AV", "sms": "SMS", "voip": "VoIP", "hoa": "HOA",
    "er": "ER", "ce": "CE", "bom": "BOM", "capa": "CAPA", "sds": "SDS", "oee": "OEE", "ppe": "PPE",
    "plc": "PLC", "ips": "IPS", "tls": "TLS", "vpn": "VPN", "hvac": "HVAC", "ab": "A/B", "sim": "SIM",
    "dtc": "DTC", "gps": "GPS", "ssh": "SSH", "utm": "UTM", "nps": "NPS", "ehr": "EHR", "ai": "AI",
}


def humanize(slug: str) -> str:
    """``ev_charging_network`` → ``EV charging network`` (sentence case, known acronyms kept)."""
    words = [_ACRONYMS.get(w, w) for w in slug.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _infer(name: str) -> dict[str, Any]:
    return dict(_infer_cached(name))


@lru_cache(maxsize=None)
def _infer_cached(name: str) -> dict[str, Any]:
    if name in _EXACT:
        return dict(_EXACT[name])
    for prefix, spec in _PREFIX.items():
        if name.startswith(prefix):
            return dict(spec)
    for suffix, spec in _SUFFIX:
        if name.endswith(suffix):
            return dict(spec)
    for suffix in _UNITS_LONGEST_FIRST:
        if name.endswith(suffix):
            return {"type": "number", "minimum": 0}
    return {"type": "string"}


def _describe(name: str, entity: str, spec: dict[str, Any]) -> str:
    owner, words = humanize(entity).lower(), humanize(name).lower()
    head = entity.rsplit("_", 1)[-1] + "_"
    if name.startswith(head) and len(name) > len(head):  # "order_type" of an order → "type"
        words = humanize(name[len(head):]).lower()
    fmt, kind = spec.get("format"), spec.get("type", "string")
    if name.endswith("_at") and fmt == "date-time":
        stem = name[:-3].replace("_", " ")
        what = f"When the {owner} was {stem}" if stem.endswith("ed") else f"{stem.capitalize()} time of the {owner}"
        return f"{what} (ISO 8601 date-time)."
    if kind == "boolean":
        for prefix, verb in (("is_", "is"), ("has_", "has")):
            if name.startswith(prefix):
                return f"Whether the {owner} {verb} {name[len(prefix):].replace('_', ' ')}."
        return f"Whether {words} applies to the {owner}."
    unit = next((_UNITS[s] for s in _UNITS_LONGEST_FIRST if name.endswith(s)), None)
    text = f"{words.capitalize()} of the {owner}"
    if unit:
        text += f", in {unit}"
    if fmt in ("date", "date-time"):
        text += f" ({'YYYY-MM-DD' if fmt == 'date' else 'ISO 8601 date-time'})"
    return text + "."


# ------------------------------------------------------------------------------ DSL parsing

_ATTR_RE = re.compile(
    r"^(?P<name>[a-z][a-z0-9_]*)(?P<array>\[\])?(?:\{(?P<fields>.*)\})?"
    r"(?:=(?P<enum>[\w.+-]+(?:\|[\w.+-]+)*))?"
    r"(?::(?P<code>[a-z]+)(?:\[(?P<lo>-?[\d.]*)\.\.(?P<hi>-?[\d.]*)\])?)?$"
)
_ENTITY_RE = re.compile(r"([a-z][a-z0-9_]*)\(")


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside braces."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _bound(text: str | None) -> float | None:
    if not text:
        return None
    value = float(text)
    return int(value) if value.is_integer() else value


def _scalar(name: str, entity: str, m: re.Match[str], infer_from: str) -> Attribute:
    spec = _infer(infer_from)
    if m["code"]:
        spec = {"type": "string", **_TYPE_CODES[m["code"]]}
    if m["enum"]:
        spec = {"type": "string", "enum": tuple(m["enum"].split("|"))}
    if m["lo"] is not None:
        spec["minimum"], spec["maximum"] = _bound(m["lo"]), _bound(m["hi"])
    fields = m["fields"]
    if fields is None and spec.get("type") == "object":
        fields = _ADDRESS_FIELDS
    kind = "object" if fields is not None else spec.get("type", "string")
    return Attribute(
        name=name,
        json_type=kind,
        enum=spec.get("enum"),
        format=spec.get("format"),
        pattern=spec.get("pattern"),
        minimum=spec.get("minimum"),
        maximum=spec.get("maximum"),
        description=_describe(name, entity, spec),
        properties=_attributes(fields, singular(name)) if fields is not None else (),
    )


def _attribute(token: str, entity: str) -> Attribute:
    m = _ATTR_RE.match(token)
    if not m:
        raise ValueError(f"taxonomy: bad attribute {token!r} in entity {entity!r}")
    name = m["name"]
    if not m["array"]:
        return _scalar(name, entity, m, name)
    item = _scalar(singular(name), entity, m, singular(name))
    owner = humanize(entity).lower()
    return Attribute(name=name, json_type="array", items=item,
                     description=f"{humanize(name)} of the {owner}.")


def _attributes(text: str, entity: str) -> tuple[Attribute, ...]:
    return tuple(_attribute(token, entity) for token in _split_top(text))


def _entities(text: str) -> tuple[Entity, ...]:
    out, pos = [], 0
    while (m := _ENTITY_RE.search(text, pos)) is not None:
        depth, end = 0, m.end() - 1
        for end in range(m.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
        out.append(Entity(m[1], _attributes(text[m.end(): end], m[1])))
        pos = end + 1
    return tuple(out)


def _parse(text: str) -> list[Category]:
    categories: list[tuple[str, str, str, list[Domain]]] = []
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        if line.startswith("# "):
            slug, title, description = (part.strip() for part in line[2:].split(" | "))
            categories.append((slug, title, description, []))
            continue
        slug, description, entities = (part.strip() for part in line.split(" | "))
        category = categories[-1]
        category[3].append(Domain(slug, humanize(slug), description, category[0], _entities(entities)))
    return [Category(slug, title, desc, tuple(domains)) for slug, title, desc, domains in categories]


@lru_cache(maxsize=1)
def load_taxonomy() -> list[Category]:
    """The categories, parsed once per process (treat the result as read-only)."""
    return _parse(_TAXONOMY)


@lru_cache(maxsize=1)
def _domain_index() -> dict[str, Domain]:
    return {d.slug: d for c in load_taxonomy() for d in c.domains}


def all_domains() -> list[Domain]:
    """Every domain, category by category, in taxonomy order."""
    return list(_domain_index().values())


def domain_by_slug(slug: str) -> Domain:
    """The domain with this slug (KeyError names the unknown slug)."""
    try:
        return _domain_index()[slug]
    except KeyError:
        raise KeyError(f"unknown taxonomy domain {slug!r}") from None


def category_by_slug(slug: str) -> Category:
    for category in load_taxonomy():
        if category.slug == slug:
            return category
    raise KeyError(f"unknown taxonomy category {slug!r}")
